"""Helpers for board tests: polling for a condition, reading what an image-dir board showed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from display.frames import frame_sha256
from display.imagedir import read_frames

T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout: float = 20.0, every: float = 0.01) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` (a guard
    against hanging, not a speed requirement)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        time.sleep(every)


def frames(folder: Path) -> list[dict[str, Any]]:
    return read_frames(folder)


def first_frames(folder: Path) -> dict[str | None, dict[str, Any]]:
    """The first frames.jsonl line of each item, by item."""
    out: dict[str | None, dict[str, Any]] = {}
    for line in read_frames(folder):
        out.setdefault(line["item"], line)
    return out


def black_sha(size: tuple[int, int]) -> str:
    return frame_sha256(Image.new("RGB", size))
