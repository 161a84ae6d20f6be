"""`[display] kind = "framebuffer"`: a Linux framebuffer (/dev/fbN), the HDMI path to LCD
screens and LED-wall sending cards.

Geometry and pixel format come from the device (FBIOGET_VSCREENINFO/FSCREENINFO);
`[display] width`, `height` and `bpp` override them, which is how a *file-backed*
framebuffer (tests, diagnosis) is described: 32 bpp means XRGB8888 and 16 bpp RGB565,
little-endian. Frames are converted and written with pwrite(2) a band of rows at a time
(no whole converted copy of a 1080p frame is held), and only the rows that changed are
written when the caller says which (a ticker strip at 1080p rewrites ~10 % of the
screen, not all of it).
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image

from agent.config import DisplayConfig
from display.board import BoardError, fit_to
from display.frames import bands
from display.pixels import (
    BYTES_PER_PIXEL,
    PixelFormat,
    from_format,
    palette_lut,
    rgb_array,
    to_format,
)

# Pillow raw packings of an RGBA band that give a 32 bpp format's bytes in memory.
_PACK: Final[dict[str, str]] = {"XRGB8888": "BGRA", "XBGR8888": "RGBA"}
FBIOGET_VSCREENINFO: Final = 0x4600
FBIOGET_FSCREENINFO: Final = 0x4602
# struct fb_var_screeninfo starts with 8 u32 then 4 bitfields of 3 u32 (red, green, blue,
# transp); 160 bytes in all. struct fb_fix_screeninfo: native alignment, unsigned longs.
_VAR: Final = struct.Struct("=8I12I")
_VAR_SIZE: Final = 160
_FIX: Final = struct.Struct("@16sLIIIIHHHIL")
_FIX_SIZE: Final = 80


@dataclass(frozen=True, slots=True)
class Geometry:
    width: int
    height: int
    stride: int  # bytes per row (line_length), >= width * bytes per pixel
    fmt: PixelFormat

    @property
    def frame_bytes(self) -> int:
        return self.stride * self.height


def format_for(bpp: int, red_offset: int = 16) -> PixelFormat:
    if bpp == 16:
        return "RGB565"
    if bpp == 32:
        return "XRGB8888" if red_offset == 16 else "XBGR8888"
    raise BoardError(f"framebuffer depth {bpp} bpp is not supported (16 or 32)")


def probe_geometry(fd: int) -> Geometry:
    """Ask the framebuffer driver for its geometry; BoardError if it is not one."""
    try:
        var = fcntl.ioctl(fd, FBIOGET_VSCREENINFO, bytes(_VAR_SIZE))
        fix = fcntl.ioctl(fd, FBIOGET_FSCREENINFO, bytes(_FIX_SIZE))
    except OSError as e:
        raise BoardError(f"not a framebuffer device: {e.strerror or e}") from None
    v = _VAR.unpack_from(var)
    xres, yres, bpp, red_offset = v[0], v[1], v[6], v[8]
    line_length = _FIX.unpack_from(fix)[9]
    return Geometry(xres, yres, line_length or xres * bpp // 8, format_for(bpp, red_offset))


class FramebufferBoard:
    kind = "framebuffer"

    def __init__(self, path: Path, geometry: Geometry, fd: int) -> None:
        self.path = path
        self.geometry = geometry
        self._fd = fd
        self._ok = True
        # Sample rows of the last whole frame written, as bytes: the watchdog compares
        # them with what the framebuffer holds (hashing whole 1080p frames at 30 fps
        # would cost 15 % of a core; 33 rows cost nothing).
        self._sample: dict[int, bytes] | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.geometry.width, self.geometry.height

    @property
    def mode(self) -> str:
        return "RGB"

    @property
    def ok(self) -> bool:
        return self._ok

    def show(
        self,
        image: Image.Image,
        *,
        item: str | None = None,
        rows: tuple[int, int] | None = None,
    ) -> None:
        """Write `image`; with `rows=(top, bottom)` only those rows (the rest unchanged).

        Converted and written a band of rows at a time (display/frames.py): no whole
        converted copy of a 1080p frame is ever held (14 MB), and each band is converted
        before its pwrite, so the screen never shows half-converted pixels."""
        if image.size != self.size:
            fit_to(image, self.size, "RGB")  # raises BoardError naming both sizes
        g = self.geometry
        top, bottom = (0, g.height) if rows is None else rows
        if not 0 <= top < bottom <= g.height:
            raise BoardError(f"rows {top}..{bottom} outside the {g.height}-row screen")
        row_bytes = g.width * BYTES_PER_PIXEL[g.fmt]
        sample: dict[int, bytes] = {}
        picks = {round(i * (g.height - 1) / 32) for i in range(33)} if rows is None else set()
        # 32 bpp: Pillow packs each band (RGB or palette) straight into the screen's byte
        # order, alpha 255 as X. RGB565: numpy, through the palette for a 'P' frame.
        pack = _PACK.get(g.fmt)
        lut = palette_lut(image, g.fmt) if pack is None and image.mode == "P" else None
        try:
            for y, band in bands(image, top, bottom, keep_palette=True):
                if pack is not None:
                    raw = band.convert("RGBA").tobytes("raw", pack)
                elif lut is not None and band.mode == "P":
                    raw = lut[np.asarray(band)].tobytes()
                else:
                    raw = to_format(rgb_array(band), g.fmt).tobytes()
                if g.stride == row_bytes:
                    os.pwrite(self._fd, raw, y * g.stride)
                    for p in picks.intersection(range(y, y + band.height)):
                        sample[p] = raw[(p - y) * row_bytes : (p - y + 1) * row_bytes]
                else:  # padded rows: write row by row, leaving the padding alone
                    for i in range(band.height):
                        row = raw[i * row_bytes : (i + 1) * row_bytes]
                        os.pwrite(self._fd, row, (y + i) * g.stride)
        except OSError as e:
            self._ok = False
            self._sample = None
            raise BoardError(f"framebuffer {self.path}: {e.strerror or e}") from None
        self._ok = True
        self._sample = sample if rows is None and g.stride == row_bytes else None

    def intact(self) -> bool | None:
        """Whether the framebuffer still holds the last whole frame written, judged on
        33 rows spread over the screen (None: not known, e.g. after a partial write)."""
        if self._sample is None:
            return None
        stride = self.geometry.stride
        try:
            return all(
                os.pread(self._fd, len(row), y * stride) == row for y, row in self._sample.items()
            )
        except OSError:
            return False

    def read(self) -> Image.Image:
        """What the framebuffer holds now, as RGB (screenshots, tests)."""
        g = self.geometry
        try:
            raw = os.pread(self._fd, g.frame_bytes, 0)
        except OSError as e:
            raise BoardError(f"framebuffer {self.path}: {e.strerror or e}") from None
        if len(raw) < g.frame_bytes:
            raise BoardError(f"framebuffer {self.path} holds {len(raw)} bytes, not {g.frame_bytes}")
        return from_format(raw, self.size, g.stride, g.fmt)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def open_board(config: DisplayConfig, **_inject: Any) -> FramebufferBoard:
    path = Path(config.path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        raise BoardError(f"framebuffer {path}: {e.strerror or e}") from None
    try:
        is_device = stat.S_ISCHR(os.fstat(fd).st_mode)
        if is_device:
            probed = probe_geometry(fd)
            bpp = config.bpp or 8 * BYTES_PER_PIXEL[probed.fmt]
            fmt = probed.fmt if not config.bpp else format_for(config.bpp)
            width, height = config.width or probed.width, config.height or probed.height
            same = (width, bpp) == (probed.width, 8 * BYTES_PER_PIXEL[probed.fmt])
            stride = probed.stride if same else width * bpp // 8
            geometry = Geometry(width, height, stride, fmt)
        else:
            # A file-backed framebuffer knows nothing about itself: the config says it all.
            if not (config.width and config.height and config.bpp):
                raise BoardError(
                    f"{path} is a regular file: set [display] width, height and bpp for it"
                )
            fmt = format_for(config.bpp)
            geometry = Geometry(config.width, config.height, config.width * config.bpp // 8, fmt)
            if os.fstat(fd).st_size < geometry.frame_bytes:
                os.ftruncate(fd, geometry.frame_bytes)
    except BaseException:
        os.close(fd)
        raise
    return FramebufferBoard(path, geometry, fd)
