"""The narrow interface between slides and a physical board, and the kind → module table.

A board is anything that can show a PIL image of its own size. The rest of the agent
sees only `Board`; which module implements it is chosen by `[display] kind` and imported
only when configured (as python-can does for its interfaces), so a device without an
LED matrix never imports luma, and a speaker-only device imports nothing at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from PIL import Image

if TYPE_CHECKING:
    from agent.config import DisplayConfig


class BoardError(Exception):
    """The board could not show a frame (device gone, SPI error, disk full...)."""


class Board(Protocol):
    """What the presenter needs from an output device."""

    kind: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels of the images `show` accepts."""
        ...

    @property
    def mode(self) -> str:
        """PIL mode the board shows natively: "RGB" or "1" (LED matrices)."""
        ...

    @property
    def ok(self) -> bool:
        """False after a failure the board could not recover from by itself."""
        ...

    def show(self, image: Image.Image, *, item: str | None = None) -> None:
        """Put `image` (exactly `size`) on the board now; BoardError if that failed.

        `item` names what is shown (for image-dir's frames.jsonl); others ignore it.
        """
        ...

    def close(self) -> None: ...


# kind -> (module, factory function). Imported only when a board of that kind is opened.
KINDS: Final[Mapping[str, tuple[str, str]]] = {
    "none": ("display.null", "open_board"),
    "image-dir": ("display.imagedir", "open_board"),
    "framebuffer": ("display.framebuffer", "open_board"),
    "max7219": ("display.max7219", "open_board"),
}


def open_board(config: DisplayConfig, **inject: Any) -> Board:
    """Open the board `config.kind` names. `inject` passes hardware seams (e.g. `spi=`)
    to the module's factory; BoardError if the device cannot be opened."""
    try:
        module_name, func_name = KINDS[config.kind]
    except KeyError:
        raise BoardError(f"unknown display kind {config.kind!r}") from None
    module = importlib.import_module(module_name)
    factory: Callable[..., Board] = getattr(module, func_name)
    return factory(config, **inject)


def fit_to(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """`image` in `mode` and `size`; BoardError if the size is wrong (a caller bug that
    would otherwise show as a garbled screen)."""
    if image.size != size:
        raise BoardError(f"frame is {image.size[0]}x{image.size[1]}, board is {size[0]}x{size[1]}")
    if image.mode == mode:
        return image
    if mode == "1":
        # A hard threshold, not Pillow's default dithering: dithered text on an LED
        # matrix is noise.
        return image.convert("L").point(lambda v: 255 if v >= 128 else 0, mode="1")
    return image.convert(mode)
