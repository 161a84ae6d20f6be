"""Agent-level sound benchmarks: a real agent + broker, recorded at a PulseAudio null sink.

Run: .venv/bin/python bench/bench_playout_agent.py [--trials 20] [--text-trials 5]
Prints p50/p95/p99/max of:
  publish of alert.start with cached media -> first audible sample   (target p99 <= 150 ms)
  publish of alert.start with text (TTS)   -> first audible sample   (target <= 1.5 s)

The clock starts just before the province signs and publishes the command, so each
figure covers signing, the broker hop, the agent's verification, planning, and the
engine's output latency. Each text trial speaks a different sentence, so espeak-ng and
the decode run every time (nothing comes from the TTS cache).
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
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sink import start_private_sink  # noqa: E402
from support.broker import DEFAULT_CONSOLE, DEFAULT_DEVICES, start_broker  # noqa: E402
from support.playout import (  # noqa: E402
    DEVICE,
    place_in_cache,
    ref_json,
    sound_agent,
    wait_online,
)
from support.pulse import Recorder, programme_signal, write_wav  # noqa: E402

THRESHOLD_DB = -40.0
TEXTS = ("Khẩn cấp", "Thông báo", "Bão số", "Lũ quét", "Sơ tán", "Mất điện", "Nước dâng")


def stats(name: str, xs: list[float]) -> None:
    a = np.array(xs) * 1000.0
    print(f"{name:52s} n={len(a):3d} p50={np.percentile(a, 50):7.1f} "
          f"p95={np.percentile(a, 95):7.1f} p99={np.percentile(a, 99):7.1f} "
          f"max={a.max():7.1f} ms")  # fmt: skip


def one_alert(province: Any, rec: Recorder, alert_id: str, args: dict[str, Any]) -> float:
    """Publish one alert.start; return seconds from publish to its first audible sample."""
    t0 = time.time()
    jti = province.send(
        DEVICE, "alert.start", {"alert_id": alert_id, "repeat": 1, "chime": False, **args}
    )
    ack = province.wait_ack(jti, timeout=30, code=None)
    if ack["status"] == "rejected":
        raise RuntimeError(f"alert.start rejected: {ack}")
    province.wait_ack(jti, status="done", timeout=30)
    rec.wait_silence_after(time.time())
    heard = rec.first_audible(THRESHOLD_DB, after=t0)
    if heard is None:
        raise RuntimeError(f"{alert_id}: nothing audible at the sink")
    time.sleep(0.2)  # let the next trial start from silence
    return heard - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--text-trials", type=int, default=5)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tcs-bench-playout-"))
    server = start_private_sink(work / "pulse")  # the agent (a child) inherits it
    broker = start_broker(work / "broker", DEFAULT_DEVICES, console_users=DEFAULT_CONSOLE)
    rec = Recorder(server.env)
    agent = None
    try:
        agent, province, _ = sound_agent(work / "agent", broker)
        ref = place_in_cache(agent, write_wav(work / "beep.wav", programme_signal(0.3)))
        agent.start()
        wait_online(province)
        rec.start()
        one_alert(province, rec, "warmup", {"media": [ref_json(ref)]})
        cached = [
            one_alert(province, rec, f"m{i}", {"media": [ref_json(ref)]})
            for i in range(args.trials)
        ]
        text = [
            one_alert(province, rec, f"t{i}", {"text": f"{TEXTS[i % len(TEXTS)]} {i}"})
            for i in range(args.text_trials)
        ]
    finally:
        if agent is not None:
            agent.stop()
        rec.stop()
        broker.stop()
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    stats("alert.start, cached media -> first audible sample", cached)
    stats("alert.start, text (TTS) -> first audible sample", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
