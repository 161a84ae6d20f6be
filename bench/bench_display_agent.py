"""Agent-level board benchmark: a real agent + broker with an image-dir board.

Run: .venv/bin/python bench/bench_display_agent.py [--trials 20] [--size 1920x1080]
     [--kind image-dir|framebuffer]
Prints p50/p95/p99/max of alert.start publish -> the alert's first frame on the board
(image-dir: frames.jsonl `t`, as the frame is handed to the board; framebuffer: a
file-backed XRGB8888 framebuffer polled every millisecond until the banner's red is in
it, so the time the pixels are there), target p99 <= 150 ms, and the
agent's RSS/PSS with the board running, idle and at its peak (VmHWM) during the alerts
(target RSS <= 80 MB).

The clock starts just before the province signs and publishes the command, so each
figure covers signing, the broker hop, verification, the emergency card's render and
the frame written. Each trial's alert is stopped once shown (back to the idle card),
so the next starts from the programme state a real alert finds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from procstat import peak_rss_mb, pss_mb, reset_peak_rss, rss_mb  # noqa: E402
from support.agentproc import AgentProc, Province, TrustKey  # noqa: E402
from support.broker import DEFAULT_CONSOLE, DEFAULT_DEVICES, start_broker  # noqa: E402
from support.playout import DEVICE, wait_online  # noqa: E402

from display.imagedir import read_frames  # noqa: E402


def shown_at(folder: Path, item: str, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in read_frames(folder):
            if line["item"] == item:
                return float(line["t"])
        time.sleep(0.005)
    raise RuntimeError(f"{item} never shown")


def pixel_is(fb: Path, offset: int, want: bytes, timeout: float = 30) -> float:
    """Poll a file-backed framebuffer until the pixel at `offset` is `want`; the time."""
    deadline = time.monotonic() + timeout
    with fb.open("rb", buffering=0) as f:
        while time.monotonic() < deadline:
            if os.pread(f.fileno(), len(want), offset) == want:
                return time.time()
            time.sleep(0.001)
    raise RuntimeError(f"{fb} never showed {want.hex()} at {offset}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--kind", choices=("image-dir", "framebuffer"), default="image-dir")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    fb = Path(tempfile.mkdtemp(prefix="tcs-bench-fb-")) / "fb0"
    # framebuffer: the first alert frame is the red banner, the idle card black; a pixel
    # at the left edge (inside the margin, never under text) tells them apart.
    probe = ((height // 2) * width + 1) * 4
    red, black = bytes((0x00, 0x00, 0xC0, 0xFF)), bytes((0, 0, 0, 0xFF))

    work = Path(tempfile.mkdtemp(prefix="tcs-bench-board-"))
    broker = start_broker(work / "broker", DEFAULT_DEVICES, console_users=DEFAULT_CONSOLE)
    folder = work / "frames"
    agent = None
    lat: list[float] = []
    rss_trace: list[int] = []
    try:
        key = TrustKey("vn-48-emergency")
        agent = AgentProc.create(work / "agent", broker, DEVICE, ["vn-48"], [key])
        board = (
            f'kind = "image-dir"\npath = "{folder}"\n'
            if args.kind == "image-dir"
            else f'kind = "framebuffer"\npath = "{fb}"\nbpp = 32\n'
        )
        fb.write_bytes(b"")
        text = agent.config.read_text().replace(
            '[display]\nkind = "none"\n',
            f"[display]\n{board}width = {width}\nheight = {height}\n",
        )
        agent.config.write_text(text)
        province = Province(broker, key)
        agent.start()
        wait_online(province)
        time.sleep(2.0)  # idle card shown, start-up work done
        assert agent.proc is not None
        rss_trace.append(round(rss_mb(agent.proc.pid)))
        idle = rss_mb(agent.proc.pid)
        reset_peak_rss(agent.proc.pid)  # the peak over the alerts, not over start-up
        for i in range(args.trials + 1):
            alert_id = f"a{i}"
            t0 = time.time()
            province.send(DEVICE, "alert.start", {"alert_id": alert_id, "text": f"Lũ quét {i}"})
            if args.kind == "image-dir":
                seen = shown_at(folder, f"alert:{alert_id}")
            else:
                seen = pixel_is(fb, probe, red)
            if i:  # the first is a warm-up
                lat.append(seen - t0)
            province.send(DEVICE, "alert.stop", {"alert_id": alert_id})
            time.sleep(1.5)
            if args.kind == "framebuffer":
                pixel_is(fb, probe, black)  # the idle card is back
            assert agent.proc is not None
            rss_trace.append(round(rss_mb(agent.proc.pid)))
        assert agent.proc is not None
        rss, pss = rss_mb(agent.proc.pid), pss_mb(agent.proc.pid)
        peak = peak_rss_mb(agent.proc.pid)
    finally:
        if agent is not None:
            agent.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(fb.parent, ignore_errors=True)
    a = np.array(lat) * 1000.0
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, board {args.kind} {width}x{height}")  # fmt: skip
    print(f"alert.start publish -> first frame on the board  n={len(a)} "
          f"p50={np.percentile(a, 50):6.1f} p95={np.percentile(a, 95):6.1f} "
          f"p99={np.percentile(a, 99):6.1f} max={a.max():6.1f} ms")  # fmt: skip
    print(f"agent with the board running: RSS {rss:.0f} MB, PSS {pss:.0f} MB at the end; "
          f"idle before the alerts {idle:.0f} MB; peak during them {peak:.0f} MB")  # fmt: skip
    print(f"RSS (MB) before the first alert, then after each: {rss_trace}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
