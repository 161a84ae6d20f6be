"""`[display] kind = "image-dir"`: every frame shown becomes `NNNNNN.png` plus a line in
`frames.jsonl` (PROTOCOL §7). For tests, demos and remote diagnosis: what the board
showed, when, and for which item, can be read back exactly.

A frames.jsonl line: `{"n": 7, "file": "000007.png", "at": "<RFC 3339 ms>",
"t": <unix seconds>, "item": "<item or alert id>"|null, "sha256": "<frame hash>"}`.
Numbering continues after the highest file already in the folder, so a restart
never overwrites what was shown before it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from agent.config import DisplayConfig
from display.board import BoardError, fit_to
from display.frames import frame_sha256

_NAME = re.compile(r"^(\d{6})\.png$")


class ImageDirBoard:
    kind = "image-dir"

    def __init__(
        self,
        folder: Path,
        size: tuple[int, int],
        *,
        mode: str = "RGB",
        wall: Callable[[], float] = time.time,
    ) -> None:
        if size[0] <= 0 or size[1] <= 0:
            raise BoardError(f"image-dir board needs a size, not {size[0]}x{size[1]}")
        self.folder = folder
        self._size = size
        self._mode = mode
        self._wall = wall
        self._ok = True
        try:
            folder.mkdir(parents=True, exist_ok=True)
            numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _NAME.match(p.name))]
        except OSError as e:
            raise BoardError(f"image-dir {folder}: {e.strerror or e}") from None
        self._n = max(numbers, default=0)

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def ok(self) -> bool:
        return self._ok

    @property
    def count(self) -> int:
        """Number of the last frame written (0 before the first)."""
        return self._n

    def show(self, image: Image.Image, *, item: str | None = None) -> None:
        # A palette frame is saved as it is (a 'P' PNG reads back as the same RGB pixels):
        # converting a 1080p frame to RGB first would hold 8 MB to write it.
        keep = image.mode == "P" and self._mode == "RGB" and image.size == self._size
        frame = image if keep else fit_to(image, self._size, self._mode)
        t = self._wall()
        n = self._n + 1
        name = f"{n:06d}.png"
        line: dict[str, Any] = {
            "n": n,
            "file": name,
            "at": datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds"),
            "t": round(t, 4),
            "item": item,
            "sha256": frame_sha256(frame),
        }
        try:
            # compress_level 1: these are diagnostics, written at up to the frame rate.
            frame.save(self.folder / name, compress_level=1)
            with (self.folder / "frames.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        except OSError as e:
            self._ok = False
            raise BoardError(f"image-dir {self.folder}: {e.strerror or e}") from None
        self._n = n
        self._ok = True

    def close(self) -> None:
        return None


def open_board(config: DisplayConfig, **inject: Any) -> ImageDirBoard:
    return ImageDirBoard(Path(config.path), (config.width, config.height), **inject)


def read_frames(folder: Path) -> list[dict[str, Any]]:
    """The frames.jsonl lines of `folder`, oldest first (for tests, the demo and the CLI)."""
    path = folder / "frames.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
