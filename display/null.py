"""`[display] kind = "none"`: no board. Shows nothing, never fails."""

from __future__ import annotations

from typing import Any

from PIL import Image

from agent.config import DisplayConfig


class NullBoard:
    kind = "none"

    def __init__(self, size: tuple[int, int] = (0, 0)) -> None:
        self._size = size

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def mode(self) -> str:
        return "RGB"

    @property
    def ok(self) -> bool:
        return True

    def show(self, image: Image.Image, *, item: str | None = None) -> None:
        return None

    def close(self) -> None:
        return None


def open_board(config: DisplayConfig, **_inject: Any) -> NullBoard:
    return NullBoard((config.width, config.height))
