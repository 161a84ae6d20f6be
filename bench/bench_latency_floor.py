"""The lowest output latency that plays without underruns under full CPU load (issue 8).

    .venv/bin/python bench/bench_latency_floor.py [--latencies 0.08,0.04,0.02,0.01]
        [--seconds 8] [--trials 8] [--burners 2]

For each engine output latency (`AudioEngine(latency_s=…)`, block 10 ms below 40 ms,
else 20 ms), with `--burners` busy-looping processes taking every core: play a tone of
`--seconds` and count the player's output underruns, then `--trials` short beeps from
silence and measure play() -> first audible sample at a private PulseAudio null sink.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sink import start_private_sink  # noqa: E402
from support.pulse import Recorder  # noqa: E402

from playback.chime import tone, write_pcm  # noqa: E402
from playback.engine import AudioEngine  # noqa: E402
from playback.prepared import Prepared  # noqa: E402

RATE = 48000


async def one_latency(
    latency: float, work: Path, rec: Recorder, seconds: float, trials: int
) -> tuple[int, list[float]]:
    block = 480 if latency < 0.04 else 960
    eng = AudioEngine(
        "pulse", RATE, work / "pcm", emit_event=lambda *_: None,
        latency_s=latency, blocksize=block,
    )  # fmt: skip
    await eng.start()
    try:
        long_path = work / f"long-{latency}.s16"
        write_pcm(tone(440.0, seconds, RATE, level=0.3, edge_s=0.01), long_path, 1)
        beep_path = work / "beep.s16"
        write_pcm(tone(1000.0, 0.2, RATE, level=0.5, edge_s=0.002), beep_path, 1)
        long = Prepared.from_pcm([long_path], sample_rate=RATE, channels=1)
        beep = Prepared.from_pcm([beep_path], sample_rate=RATE, channels=1)
        before = eng.underflows
        v = eng.play(long)
        await v.done
        under = eng.underflows - before
        lat: list[float] = []
        for _ in range(trials):
            await asyncio.sleep(0.4)
            t0 = time.time()
            v = eng.play(beep)
            await v.done
            await asyncio.sleep(0.1)
            heard = rec.first_audible(-40, after=t0)
            if heard is not None:
                lat.append(heard - t0)
        return under, lat
    finally:
        await eng.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latencies", default="0.08,0.04,0.02,0.01")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tcs-bench-floor-"))
    server = start_private_sink(work / "pulse")
    rec = Recorder(server.env)
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.burners)
    ]
    results = []
    try:
        rec.start()
        for lat in (float(x) for x in a.latencies.split(",")):
            under, xs = asyncio.run(one_latency(lat, work, rec, a.seconds, a.trials))
            results.append((lat, under, xs))
    finally:
        for b in burners:
            b.kill()
        rec.stop()
        server.kill()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {a.burners} CPU burners, "
          f"load1 {os.getloadavg()[0]:.1f}")  # fmt: skip
    for lat, under, xs in results:
        arr = np.array(xs) * 1000
        print(f"latency_s={lat:5.3f}  underruns in {a.seconds:.0f} s: {under:3d}  "
              f"play->audible p50 {np.percentile(arr, 50):6.1f} ms  "
              f"p99 {np.percentile(arr, 99):6.1f} ms  (n={len(arr)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
