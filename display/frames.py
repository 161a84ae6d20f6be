"""Frame identity: the SHA-256 every proof, frames.jsonl line and `test.run display`
ack carries, computed the same way whatever the board.

The hash is over the frame's RGB pixels (row-major, 3 bytes a pixel), not over any file
encoding or palette, so a PNG written by image-dir, a framebuffer read back and the
proof agree, and a 'P' frame hashes as the RGB image it shows.

Frames are converted in bands of `BAND` rows (`bands`): a whole 1080p frame converted
at once is 8 MB in Pillow plus 6 MB of bytes, held only to be hashed or written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Final

from PIL import Image

BAND: Final = 32  # rows: 1920 x 32 RGB is 0.25 MB in Pillow


def bands(
    image: Image.Image, top: int = 0, bottom: int | None = None, *, keep_palette: bool = False
) -> Iterator[tuple[int, Image.Image]]:
    """(first row, RGB band) for rows `top`..`bottom` of `image`, `BAND` rows at a time
    (a 'P' band as it is with `keep_palette`)."""
    w, h = image.size
    end = h if bottom is None else bottom
    for y in range(top, end, BAND):
        band = image.crop((0, y, w, min(end, y + BAND)))
        keep = band.mode == "RGB" or (keep_palette and band.mode == "P")
        yield y, band if keep else band.convert("RGB")


def frame_sha256(image: Image.Image) -> str:
    digest = hashlib.sha256()
    for _, band in bands(image):
        digest.update(band.tobytes())
    return digest.hexdigest()
