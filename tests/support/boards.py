"""Helpers for board tests: polling for a condition, reading what an image-dir board showed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from support.timing import poll as poll  # the one polling helper, re-exported

from display.frames import frame_sha256
from display.imagedir import read_frames


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
