"""A file-backed framebuffer receives the right pixels, in 16- and 32-bit formats."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image

from agent.config import DisplayConfig
from display.board import BoardError, open_board
from display.framebuffer import FramebufferBoard, Geometry
from display.render import Style, image_scene, text_scene

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
W, H = 320, 180


def fb_file(tmp_path: Path, bpp: int) -> FramebufferBoard:
    path = tmp_path / f"fb{bpp}"
    path.write_bytes(b"")
    board = open_board(
        DisplayConfig(kind="framebuffer", path=str(path), width=W, height=H, bpp=bpp)
    )
    assert isinstance(board, FramebufferBoard)
    return board


def raw_pixel(path: Path, bpp: int, x: int, y: int) -> bytes:
    data = path.read_bytes()
    n = bpp // 8
    offset = (y * W + x) * n
    return data[offset : offset + n]


def colour_card() -> Image.Image:
    """Four quadrants of known colours, 400x300 (so the slide letterboxes it)."""
    image = Image.new("RGB", (400, 300), "#FF0000")
    image.paste((0, 255, 0), (200, 0, 400, 150))
    image.paste((0, 0, 255), (0, 150, 200, 300))
    image.paste((255, 255, 255), (200, 150, 400, 300))
    return image


@pytest.mark.parametrize("bpp", [16, 32])
def test_image_slide_reaches_the_framebuffer_bytes(tmp_path: Path, bpp: int) -> None:
    board = fb_file(tmp_path, bpp)
    frame = image_scene(colour_card(), Style(background="#000000"), board.size).frame(0, 0)
    board.show(frame)
    path = tmp_path / f"fb{bpp}"
    assert path.stat().st_size == W * H * bpp // 8
    # 400x300 in 320x180: scaled to 240x180, letterboxed 40 px left and right.
    red, green, blue, white, black = (
        raw_pixel(path, bpp, x, y)
        for x, y in ((80, 40), (240, 40), (80, 140), (240, 140), (10, 90))
    )
    if bpp == 32:  # XRGB8888 little-endian: B, G, R, X in memory
        assert (red, green, blue, white) == (
            b"\0\0\xff\xff",
            b"\0\xff\0\xff",
            b"\xff\0\0\xff",
            b"\xff" * 4,
        )
        assert black == b"\0\0\0\xff"
    else:  # RGB565 little-endian
        assert (red, green, blue, white, black) == (
            (0xF800).to_bytes(2, "little"),
            (0x07E0).to_bytes(2, "little"),
            (0x001F).to_bytes(2, "little"),
            b"\xff\xff",
            b"\0\0",
        )


@pytest.mark.parametrize("bpp", [16, 32])
def test_text_slide_reads_back_as_rendered(tmp_path: Path, bpp: int) -> None:
    board = fb_file(tmp_path, bpp)
    frame = text_scene(
        "Ặ ễ Ữ ỗ", Style(color="#FFFF00", background="#0000FF"), board.size, TZ
    ).frame(0, 0)
    board.show(frame)
    shown = np.asarray(board.read(), dtype=np.int16)
    want = np.asarray(frame.convert("RGB"), dtype=np.int16)  # text frames are 'P'
    # RGB565 keeps 5-6 bits a channel: equal within that quantisation.
    tolerance = 0 if bpp == 32 else 8
    assert int(np.abs(shown - want).max()) <= tolerance
    # And the text is really there: yellow pixels on the blue background.
    yellow = (shown[..., 0] > 200) & (shown[..., 1] > 200) & (shown[..., 2] < 60)
    assert yellow.sum() > 500


@pytest.mark.parametrize(("bpp", "fmt"), [(16, "RGB565"), (32, "XRGB8888"), (32, "XBGR8888")])
def test_padded_rows_keep_their_padding(tmp_path: Path, bpp: int, fmt: str) -> None:
    """A device whose line length is longer than its visible row (some HDMI modes): each
    row lands at its own stride and the padding after it is left as it was."""
    row = W * bpp // 8
    stride = row + 64
    path = tmp_path / "fb-padded"
    path.write_bytes(b"\xab" * stride * H)
    fd = os.open(path, os.O_RDWR)
    board = FramebufferBoard(path, Geometry(W, H, stride, fmt), fd)  # type: ignore[arg-type]
    try:
        frame = text_scene("Ặ ễ Ữ ỗ", Style(background="#0000FF"), (W, H), TZ).frame(0, 0)
        board.show(frame)
        shown = np.asarray(board.read(), dtype=np.int16)
    finally:
        board.close()
    want = np.asarray(frame.convert("RGB"), dtype=np.int16)
    assert int(np.abs(shown - want).max()) <= (0 if bpp == 32 else 8)
    data = path.read_bytes()
    assert all(data[y * stride + row : (y + 1) * stride] == b"\xab" * 64 for y in range(H))


def test_partial_rows_leave_the_rest_alone(tmp_path: Path) -> None:
    board = fb_file(tmp_path, 32)
    board.show(Image.new("RGB", (W, H), "#00FF00"))
    board.show(Image.new("RGB", (W, H), "#FF0000"), rows=(100, 120))
    shown = board.read()
    assert shown.getpixel((5, 99)) == (0, 255, 0)
    assert shown.getpixel((5, 100)) == (255, 0, 0) and shown.getpixel((5, 119)) == (255, 0, 0)
    assert shown.getpixel((5, 120)) == (0, 255, 0)


def test_regular_file_without_geometry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fb"
    path.write_bytes(b"")
    with pytest.raises(BoardError, match="width, height and bpp"):
        open_board(DisplayConfig(kind="framebuffer", path=str(path), width=W, height=H))


def test_wrong_frame_size_is_refused(tmp_path: Path) -> None:
    board = fb_file(tmp_path, 16)
    with pytest.raises(BoardError, match="board is 320x180"):
        board.show(Image.new("RGB", (10, 10)))
