"""Frame → framebuffer bytes (pure, numpy): the conversions an HDMI framebuffer needs.

Formats are named as DRM does, bytes little-endian in memory (the Raspberry Pi's
defaults): XRGB8888 is B, G, R, X in memory; XBGR8888 is R, G, B, X; RGB565 is a
little-endian 16-bit word rrrrrggggggbbbbb. numpy does the whole frame in one pass,
so 1920×1080 converts in a few milliseconds (bench/bench_display.py).
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

PixelFormat = Literal["XRGB8888", "XBGR8888", "RGB565"]
BYTES_PER_PIXEL: Final[dict[str, int]] = {"XRGB8888": 4, "XBGR8888": 4, "RGB565": 2}


def rgb_array(image: Image.Image) -> npt.NDArray[np.uint8]:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8)


def to_format(rgb: npt.NDArray[np.uint8], fmt: PixelFormat) -> npt.NDArray[np.uint8]:
    """H×W×3 RGB → H×(W·bytes per pixel) bytes in `fmt`."""
    h, w, _ = rgb.shape
    if fmt == "RGB565":
        r = rgb[..., 0].astype(np.uint16)
        g = rgb[..., 1].astype(np.uint16)
        b = rgb[..., 2].astype(np.uint16)
        word = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)
        return word.astype("<u2").view(np.uint8).reshape(h, w * 2)
    out = np.empty((h, w, 4), dtype=np.uint8)
    if fmt == "XRGB8888":
        out[..., 0] = rgb[..., 2]
        out[..., 1] = rgb[..., 1]
        out[..., 2] = rgb[..., 0]
    else:
        out[..., :3] = rgb
    out[..., 3] = 0xFF  # X: ignored by the scanout, opaque if something reads it as alpha
    return out.reshape(h, w * 4)


def palette_lut(image: Image.Image, fmt: PixelFormat) -> npt.NDArray[np.generic]:
    """A 'P' image's 256 palette entries as `fmt` pixels (uint32 or uint16, one each):
    `lut[indices]` converts a band of a palette frame with one lookup a pixel, exactly
    as `to_format` would convert its RGB (which it is built with)."""
    flat = (image.getpalette("RGB") or []) + [0] * 768
    rgb = np.array(flat[:768], dtype=np.uint8).reshape(256, 1, 3)
    packed = to_format(rgb, fmt)  # 256 rows of one pixel
    return packed.view("<u4" if BYTES_PER_PIXEL[fmt] == 4 else "<u2").reshape(256)


def from_format(raw: bytes, size: tuple[int, int], stride: int, fmt: PixelFormat) -> Image.Image:
    """Framebuffer bytes → RGB image (the inverse, for screenshots and tests)."""
    w, h = size
    bpp = BYTES_PER_PIXEL[fmt]
    rows = np.frombuffer(raw, dtype=np.uint8, count=stride * h).reshape(h, stride)[:, : w * bpp]
    if fmt == "RGB565":
        word = rows.copy().view("<u2").astype(np.uint32)
        r = ((word >> 11) & 0x1F) * 255 // 31
        g = ((word >> 5) & 0x3F) * 255 // 63
        b = (word & 0x1F) * 255 // 31
        rgb = np.stack([r, g, b], axis=-1).astype(np.uint8)
    else:
        px = rows.reshape(h, w, 4)
        rgb = px[..., [2, 1, 0]] if fmt == "XRGB8888" else px[..., :3]
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")
