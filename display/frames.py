"""Frame identity: the SHA-256 every proof, frames.jsonl line and `test.run display`
ack carries, computed the same way whatever the board.

The hash is over the frame's RGB pixels (row-major, 3 bytes a pixel), not over any file
encoding, so a PNG written by image-dir, a framebuffer read back and the proof agree.
"""

from __future__ import annotations

import hashlib

from PIL import Image


def frame_sha256(image: Image.Image) -> str:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return hashlib.sha256(rgb.tobytes()).hexdigest()
