"""Audio engine benchmarks, recorded at a PulseAudio null sink (see docs/AUDIO.md).

Run: .venv/bin/python bench/bench_playback_latency.py [--trials 20]
Prints p50/p95/p99/max of:
  cached media -> first audible sample after play()      (target p99 <= 150 ms)
  text -> first audible sample (espeak-ng + decode)       (target p99 <= 1.5 s)
  |audible start - scheduled time|                        (target p99 <= 20 ms)
  start skew between three engines on one host            (target <= 10 ms)
  CPU (% of a core) and RSS while playing an MP3          (targets <= 10 %, <= 100 MB)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from procstat import cpu_seconds, rss_mb  # noqa: E402
from sink import start_private_sink  # noqa: E402
from support.pulse import Recorder, programme_signal, write_mp3, write_wav  # noqa: E402

from playback.chime import tone  # noqa: E402
from playback.engine import AudioEngine  # noqa: E402

RATE = 48000


def stats(name: str, xs: list[float], unit: str = "ms", scale: float = 1000.0) -> None:
    a = np.array(xs) * scale
    print(f"{name:48s} n={len(a):3d} p50={np.percentile(a, 50):7.1f} "
          f"p95={np.percentile(a, 95):7.1f} p99={np.percentile(a, 99):7.1f} "
          f"max={a.max():7.1f} {unit}")  # fmt: skip


def onset(x: np.ndarray, freq: float, start: int, thresh: float) -> int:
    """First sample index (1 ms hops) where the `freq` component exceeds `thresh`."""
    w = 96  # 2 ms window: several periods of >= 500 Hz
    t = np.arange(w) / RATE
    s, c = np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)
    for i in range(start, len(x) - w, 48):
        seg = x[i : i + w]
        if 2 * np.hypot(seg @ s, seg @ c) / w > thresh:
            return i
    raise ValueError("no onset")


async def run(trials: int, work: Path, rec: Recorder) -> None:
    ev: list[tuple[str, str, str]] = []
    eng = AudioEngine("pulse", RATE, work / "pcm", emit_event=lambda *a: ev.append(a))
    await eng.start()
    clip = write_wav(work / "clip.wav", programme_signal(0.3))
    await eng.prepare(clip)  # decode once: the benchmark is about cached media
    rec.start()

    cached = []
    for _ in range(trials):
        asked = time.time()
        p = await eng.prepare(clip)
        v = eng.play(p)
        await v.done
        rec.wait_silence_after(time.time())
        cached.append(rec.first_audible(-40, after=asked - 0.001) - asked)  # type: ignore[operator]
        await asyncio.sleep(0.1)
    stats("cached media -> first audible sample", cached)

    spoken = []
    for i in range(trials):
        asked = time.time()
        p = await eng.prepare_text(f"Thông báo số {i} của ủy ban nhân dân xã, lúc {asked:.0f}.")
        v = eng.play(p)
        await v.done
        rec.wait_silence_after(time.time())
        spoken.append(rec.first_audible(-40, after=asked - 0.001) - asked)  # type: ignore[operator]
    stats("text -> first audible sample", spoken)

    sched, proof = [], []
    p = await eng.prepare(clip)
    for _ in range(trials):
        at = time.time() + 0.3
        v = eng.play(p, at_wall=at)
        await v.done
        rec.wait_silence_after(time.time())
        heard = rec.first_audible(-40, after=at - 0.1)
        sched.append(abs(heard - at))  # type: ignore[operator]
        proof.append(abs(heard - v.first_sample_wall))  # type: ignore[operator]
        await asyncio.sleep(0.05)
    stats("|audible start - scheduled time|", sched)
    stats("|audible start - proof first_sample_wall|", proof)

    # Three engines, one host, the same moment; each plays its own frequency.
    freqs = (500.0, 1000.0, 2000.0)
    engines = [eng] + [AudioEngine("pulse", RATE, work / "pcm", emit_event=lambda *a: None)
                       for _ in range(2)]  # fmt: skip
    for e in engines[1:]:
        await e.start()
    preps = []
    for f in freqs:
        w = write_wav(work / f"t{int(f)}.wav", tone(f, 0.3, RATE, level=0.3, edge_s=0.0))
        preps.append(await engines[0].prepare(w))
    skews = []
    for _ in range(trials):
        at = time.time() + 0.4
        vs = [e.play(pp, at_wall=at) for e, pp in zip(engines, preps, strict=True)]
        await asyncio.gather(*(v.done for v in vs))
        rec.wait_silence_after(time.time())
        x = rec.samples
        i0 = rec.index_of(at - 0.1)
        starts = [onset(x, f, i0, 0.15) for f in freqs]
        skews.append((max(starts) - min(starts)) / RATE)
        await asyncio.sleep(0.05)
    stats("start skew between 3 engines", skews)
    for e in engines[1:]:
        await e.stop()

    # CPU and RSS while playing an MP3 (decoded ahead, as the runner does).
    mp3 = write_mp3(work / "prog.mp3", programme_signal(8.0))
    p = await eng.prepare(mp3)
    assert eng._proc is not None
    player = eng._proc.pid
    me = os.getpid()
    v = eng.play(p)
    await asyncio.sleep(1.0)
    c0p, c0m = cpu_seconds(player), cpu_seconds(me)
    t0 = time.monotonic()
    await asyncio.sleep(5.0)
    c1p, c1m = cpu_seconds(player), cpu_seconds(me)
    rss_p, rss_m = rss_mb(player), rss_mb(me)
    dt = time.monotonic() - t0
    await v.done
    print(
        f"{'CPU while playing MP3 (player process)':48s} {100 * (c1p - c0p) / dt:5.1f} % of a core"
    )
    agent_cpu = 100 * (c1m - c0m) / dt
    # This process also holds the whole recording, so its RSS says little about the engine.
    print(f"{'CPU while playing MP3 (engine side, this proc)':48s} {agent_cpu:5.1f} % of a core")
    print(f"{'RSS of the player process':48s} {rss_p:5.1f} MB (bench proc {rss_m:.0f} MB)")
    await eng.stop()
    assert not [e for e in ev if e[1] != "audio_device_restored"], ev


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-playback-"))
    srv = start_private_sink(work)
    rec = Recorder(srv.env)
    try:
        asyncio.run(run(args.trials, work, rec))
    finally:
        rec.stop()
        srv.kill()


if __name__ == "__main__":
    main()
