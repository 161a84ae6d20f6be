"""Video slide pre-roll: what a video's first frame costs, cold and warm, idle and loaded.

Run: .venv/bin/python bench/bench_video_preroll.py [--runs 10] [--load 0]

- cold: `VideoScene.open()` with a decoder process started on the spot (Python +
  libVLC start-up + the file's first frame), as before the decoder pool.
- warm: the same with a `DecoderPool` whose process was warmed beforehand (the board
  warms one when it prepares a video slide, minutes ahead): only the file is opened
  and its first frame decoded.
- first-frame lateness: a pre-rolled video cued on an image-dir board 1 s ahead (the
  planner calls `play()` about 1 s before a start); frames.jsonl's time of the first
  frame minus the planned time.
- RSS of an idle warm decoder (the cost of keeping one waiting).

`--load N` runs N busy-looping processes meanwhile (the machine the suites share).
The cold start is what cannot be bounded on a loaded machine (it is a process start),
which is why it happens minutes ahead; the figures here show by how much.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procstat import rss_mb

from display.imagedir import ImageDirBoard, read_frames
from display.presenter import Presenter
from display.video import DecoderPool, VideoScene, probe


def clip(folder: Path) -> Path:
    out = folder / "bars.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "smptebars=size=1280x720:rate=25", "-t", "2", "-c:v", "libx265",
         "-x265-params", "log-level=error", "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )  # fmt: skip
    return out


def summary(name: str, values: list[float]) -> None:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    print(
        f"{name:28s} median {statistics.median(values) * 1000:7.1f} ms   "
        f"p90 {p90 * 1000:7.1f} ms   max {values[-1] * 1000:7.1f} ms   (n={len(values)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--load", type=int, default=0)
    args = ap.parse_args()
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            path = clip(folder)
            info = probe(path)
            size = (1920, 1080)
            cold: list[float] = []
            warm: list[float] = []
            late: list[float] = []
            idle_rss: list[float] = []
            for i in range(args.runs):
                t = time.monotonic()
                scene = VideoScene(path, info, size)
                scene.open()
                cold.append(time.monotonic() - t)
                scene.close()

                pool = DecoderPool()
                pool.warm()
                spare = pool._spare  # the bench reads the waiting process
                assert spare is not None and spare.stdout is not None
                assert spare.stdout.peek(5)[:5] == b"WARM\n"  # blocks until warm
                idle_rss.append(rss_mb(spare.pid))
                t = time.monotonic()
                scene = VideoScene(path, info, size, pool=pool)
                scene.open()
                warm.append(time.monotonic() - t)

                board = ImageDirBoard(folder / f"frames{i}", size)
                presenter = Presenter(board, fps=25)
                presenter.start()
                slot = time.time() + 1.0
                presenter.cue(scene, item="video", at=slot)
                while not read_frames(board.folder):
                    time.sleep(0.01)
                late.append(read_frames(board.folder)[0]["t"] - slot)
                presenter.stop()
                pool.close()
            print(f"video pre-roll, 1280x720 HEVC onto 1920x1080, load {args.load}")
            summary("cold open (process start)", cold)
            summary("warm open (pool)", warm)
            summary("first frame - planned", late)
            print(f"idle warm decoder RSS       median {statistics.median(idle_rss):.1f} MB")
    finally:
        for p in load:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
