"""Board benchmarks: Full-HD text slide render, 1080p ticker and 128x32 marquee frame
rates with the CPU they cost, and the process's memory with a board running.

Run: .venv/bin/python bench/bench_display.py [--seconds 10]

- render: `text_scene` for 40 different bulletin texts at 1920x1080 (title, clock,
  ticker), first frame included; p50/p99/max. The first call pays font loading, the
  figures exclude it (a board renders its next slide ahead of time anyway).
- ticker: the presenter writing a ticker scene to a file-backed 1920x1080 XRGB8888
  framebuffer (partial row writes), for `--seconds`; frames written per second and
  this process's CPU time over wall time (100 % = one core).
- marquee: a 128x32 MAX7219 chain (luma, 16 modules in 4 rows) with an SPI bus that
  discards bytes, same measurement.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from procstat import cpu_seconds, rss_mb

from agent.config import DisplayConfig
from display.board import open_board
from display.max7219 import Max7219Board
from display.presenter import Presenter
from display.render import Style, text_scene

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TEXT = (
    "Thông báo lịch tiêm chủng mở rộng cho trẻ em dưới năm tuổi tại trạm y tế xã ngày "
    "thứ bảy tuần này người dân cần mang theo sổ tiêm chủng và thẻ bảo hiểm y tế đặc biệt "
    "lưu ý phòng chống lũ lụt ặ ễ Ữ ỗ"
)
WORDS = TEXT.split(" ")


class CountingBoard:
    """Counts frames the presenter hands to a real board."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self.kind = board.kind
        self.frames = 0
        if "rows" in board.show.__code__.co_varnames:
            self.show = self._show_rows  # keep the partial-write path visible to the presenter

    @property
    def size(self) -> tuple[int, int]:
        return self.board.size  # type: ignore[no-any-return]

    @property
    def mode(self) -> str:
        return self.board.mode  # type: ignore[no-any-return]

    @property
    def ok(self) -> bool:
        return self.board.ok  # type: ignore[no-any-return]

    def show(self, image: Any, *, item: str | None = None) -> None:
        self.board.show(image, item=item)
        self.frames += 1

    def _show_rows(self, image: Any, *, item: str | None = None, rows: Any = None) -> None:
        self.board.show(image, item=item, rows=rows)
        self.frames += 1

    def close(self) -> None:
        self.board.close()


def bench_render() -> str:
    text_scene("khởi động", Style(), (1920, 1080), TZ)  # font loading
    times = []
    for i in range(40):
        words = WORDS[i % 7 :] + WORDS[: i % 7]
        text = " ".join(words[: 12 + i % 20])
        t = time.perf_counter()
        scene = text_scene(
            text, Style(title=f"UBND xã {i}", clock=True, ticker="Bản tin"), (1920, 1080), TZ
        )
        scene.frame(0.0, time.time())
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return (
        f"render 1920x1080 text slide: p50 {statistics.median(times):6.1f} ms  "
        f"p99 {p99:6.1f} ms  max {times[-1]:6.1f} ms  (n={len(times)})"
    )


def run(board: Any, scene: Any, fps: int, seconds: float) -> tuple[float, float]:
    counting = CountingBoard(board)
    presenter = Presenter(counting, fps=fps)  # type: ignore[arg-type]
    presenter.start()
    presenter.cue(scene, item="bench")
    time.sleep(0.5)  # first frame and warm-up
    f0, c0, t0 = counting.frames, cpu_seconds(os.getpid()), time.monotonic()
    time.sleep(seconds)
    f1, c1, t1 = counting.frames, cpu_seconds(os.getpid()), time.monotonic()
    presenter.stop()
    return (f1 - f0) / (t1 - t0), 100 * (c1 - c0) / (t1 - t0)


class NullSpi:
    def data(self, data: list[int]) -> None:
        return None

    def command(self, *cmd: int) -> None:
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    print(bench_render())
    with tempfile.TemporaryDirectory() as tmp:
        fb = Path(tmp) / "fb0"
        fb.write_bytes(b"")
        board = open_board(
            DisplayConfig(kind="framebuffer", path=str(fb), width=1920, height=1080, bpp=32)
        )
        scene = text_scene(
            "Lịch cắt điện", Style(ticker="Bản tin khẩn: " + " ".join(WORDS[:20]), speed=120),
            (1920, 1080), TZ,
        )  # fmt: skip
        fps, cpu = run(board, scene, 30, args.seconds)
        print(f"ticker 1920x1080 framebuffer:  {fps:5.1f} fps  CPU {cpu:5.1f} % of a core")
        print(f"RSS with a 1080p board running: {rss_mb(os.getpid()):.0f} MB")
        board.close()
    matrix = Max7219Board(NullSpi(), width=128, height=32)
    scene = text_scene(" ".join(WORDS[:12]), Style(speed=32), (128, 32), TZ, mono=True)
    fps, cpu = run(matrix, scene, 30, args.seconds)
    print(f"marquee 128x32 max7219:        {fps:5.1f} fps  CPU {cpu:5.1f} % of a core")


if __name__ == "__main__":
    main()
