"""Issue 4 benchmarks through real agents, recorded at one PulseAudio null sink.

Run: .venv/bin/python bench/bench_playout_fleet.py [--trials 20] [--mp3-s 60] [--skip-cpu]

1. Start skew: three real agents (dev-0001..3, one broker, one host) all output to the
   same private null sink. Each trial sends every agent a new `schedule.set` version with
   one item at the same instant (3-4 s ahead); agent k's media is a 200 ms tone burst at
   its own frequency (1, 2, 3 kHz, sharp onset), so the three onsets are told apart in
   the one recording by a per-frequency sliding DFT. skew = max - min onset.
   Prints p50/p99/max skew and each agent's |onset - scheduled| p99.   (target <= 10 ms)
2. CPU and RSS: one agent plays a long 128 kbit/s MP3 (lame) as a scheduled item;
   /proc/<pid>/stat and status of the agent process and its player subprocess
   (`python -m playback.player`) are sampled every second while it sounds. Prints mean
   CPU % of a core (each, total) and peak RSS (each).     (targets <= 10 %, <= 100 MB)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from procstat import cpu_seconds, pss_mb, rss_mb, stat_fields  # noqa: E402
from sink import start_private_sink  # noqa: E402
from support.agentproc import AgentProc, Msg, Province, TrustKey  # noqa: E402
from support.broker import DeviceEntry, start_broker  # noqa: E402
from support.playout import item_at, place_in_cache  # noqa: E402
from support.pulse import (  # noqa: E402
    RATE,
    PulseServer,
    Recorder,
    programme_signal,
    write_mp3,
    write_wav,
)

from agent import jws  # noqa: E402
from agent.timeutil import parse_rfc3339  # noqa: E402
from playback.chime import tone  # noqa: E402

DEVICES = ("dev-0001", "dev-0002", "dev-0003")
FREQS = (1000.0, 2000.0, 3000.0)
LEVEL = 0.25
WIN = 96  # 2 ms: 1, 2 and 3 kHz are whole DFT bins (500 Hz apart), so they do not leak
LEAD_S = 3.0  # how far ahead each trial's instant is scheduled


def stats(name: str, xs: list[float]) -> str:
    a = np.array(xs) * 1000.0
    return (f"{name:44s} n={len(a):3d} p50={np.percentile(a, 50):6.1f} "
            f"p99={np.percentile(a, 99):6.1f} max={a.max():6.1f} ms")  # fmt: skip


def sound_agent(workdir: Path, broker: Any, device: str, key: TrustKey) -> AgentProc:
    """Enrol an agent on `device` whose `[audio] output` is the private null sink."""
    agent = AgentProc.create(workdir, broker, device, ["vn-48"], [key])
    text = agent.config.read_text()
    assert 'output = "none"\n' in text
    agent.config.write_text(text.replace('output = "none"\n', 'output = "pulse"\n'))
    return agent


def onset(x: npt.NDArray[np.float32], freq: float, start: int, span: int) -> int:
    """Sample index where a `freq` burst begins in x[start:start+span].

    The amplitude of `freq` over a sliding WIN-sample window crosses half the burst's
    level when the window is half covered by it, so onset = that index + WIN/2
    (exact for a lone burst; when the other bursts begin inside the same 2 ms their
    partial windows leak in and the estimate moves by up to ~20 samples, 0.4 ms).
    """
    seg = x[start : start + span].astype(np.float64)
    t = np.arange(WIN) / RATE
    kernel = np.exp(-2j * np.pi * freq * t)[::-1]
    amp = 2.0 * np.abs(np.convolve(seg, kernel, mode="valid")) / WIN
    hits = np.flatnonzero(amp > LEVEL / 2)
    if hits.size == 0:
        raise RuntimeError(f"no {freq:.0f} Hz onset near the scheduled instant")
    return start + int(hits[0]) + WIN // 2


def schedule_all(
    province: Province, refs: dict[str, Any], version: int, at: float, item_id: str
) -> None:
    jtis = {
        dev: province.send(
            dev, "schedule.set", {"version": version, "items": [item_at(item_id, r, at)]}
        )
        for dev, r in refs.items()
    }
    for dev, jti in jtis.items():
        ack = province.wait_ack(jti, device=dev, timeout=10)
        if ack["status"] != "accepted":
            raise RuntimeError(f"{dev}: schedule.set not accepted: {ack}")


def proof_start(province: Province, dev: str, item_id: str, timeout: float = 10) -> float:
    """`started_at` of `dev`'s proof for `item_id`: the engine's own idea of when the
    first sample left the DAC (payload read without verification; tests verify it)."""

    def match(m: Msg) -> bool:
        if m.topic != f"tcs/v1/dev/{dev}/proof":
            return False
        return bool(_claims(m).get("item_id") == item_id)

    started = _claims(province.wait_for(match, timeout))["started_at"]
    return parse_rfc3339(str(started)).timestamp()


def _claims(m: Msg) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(jws.b64url_decode(m.payload.split(b".")[1]))
    return record


def wait_online(province: Province, devices: tuple[str, ...], timeout: float = 60) -> None:
    """Each agent has connected and subscribed (its first heartbeat follows the subscribe)."""
    for dev in devices:
        province.wait_for(partial(_on_topic, f"tcs/v1/dev/{dev}/hb"), timeout)


def _on_topic(topic: str, m: Msg) -> bool:
    return m.topic == topic


# ---- part 1: start skew -------------------------------------------------------------


def skew_bench(work: Path, broker: Any, server: PulseServer, trials: int) -> list[str]:
    key = TrustKey("vn-48-emergency")
    agents = [sound_agent(work / dev, broker, dev, key) for dev in DEVICES]
    refs: dict[str, Any] = {}
    for dev, agent, f in zip(DEVICES, agents, FREQS, strict=True):
        burst = tone(f, 0.2, RATE, level=LEVEL, edge_s=0.0)
        refs[dev] = place_in_cache(agent, write_wav(work / f"{dev}.wav", burst))
    rec = Recorder(server.env)
    province = Province(broker, key)
    skews: list[float] = []
    late: dict[str, list[float]] = {d: [] for d in DEVICES}
    # heard onset - proof started_at: how far the engine's DAC-time estimate is off
    proof_err: dict[str, list[float]] = {d: [] for d in DEVICES}
    try:
        for a in agents:
            a.start()
        wait_online(province, DEVICES)
        rec.start()
        for trial in range(trials + 1):  # trial 0 warms up (first open of each player)
            at = float(math.ceil(time.time() + LEAD_S))
            schedule_all(province, refs, trial + 1, at, f"tone{trial}")
            time.sleep(max(0.0, at + 0.4 - time.time()))
            rec.wait_silence_after(at + 0.35)
            x = rec.samples
            i0 = rec.index_of(at - 0.25)
            starts = [onset(x, f, i0, RATE) for f in FREQS]
            if trial == 0:
                continue
            skews.append((max(starts) - min(starts)) / RATE)
            for dev, s in zip(DEVICES, starts, strict=True):
                late[dev].append(rec.wall_of(s) - at)
                proof_err[dev].append(rec.wall_of(s) - proof_start(province, dev, f"tone{trial}"))
            print(f"trial {trial:2d}: onset - scheduled (ms) "
                  + " ".join(f"{1000 * late[d][-1]:+6.1f}" for d in DEVICES)
                  + f"  skew {1000 * skews[-1]:5.1f}  onset - proof started_at "
                  + " ".join(f"{1000 * proof_err[d][-1]:+6.1f}" for d in DEVICES),
                  flush=True)  # fmt: skip
    finally:
        rec.stop()
        province.close()
        for a in agents:
            a.stop()
    out = [stats("start skew, 3 agents (max - min onset)", skews)]
    for dev, f in zip(DEVICES, FREQS, strict=True):
        xs = late[dev]
        out.append(stats(f"|onset - scheduled|, {dev} ({f / 1000:.0f} kHz)", [abs(v) for v in xs])
                   + f"  (signed mean {1000 * float(np.mean(xs)):+.1f})")  # fmt: skip
    for dev in DEVICES:
        xs = proof_err[dev]
        out.append(stats(f"|onset - proof started_at|, {dev}", [abs(v) for v in xs])
                   + f"  (signed mean {1000 * float(np.mean(xs)):+.1f})")  # fmt: skip
    return out


# ---- part 2: CPU and RSS while playing an MP3 ----------------------------------------


def player_of(agent_pid: int) -> int:
    """Pid of the agent's `python -m playback.player` child (parent pid from /proc/*/stat)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(stat_fields(int(entry.name))[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == agent_pid and b"playback.player" in cmd:
            return int(entry.name)
    raise RuntimeError("the agent has no player subprocess")


def cpu_bench(work: Path, broker: Any, seconds: float) -> list[str]:
    key = TrustKey("vn-48-emergency")
    agent = sound_agent(work / "cpu", broker, DEVICES[0], key)
    mp3 = write_mp3(work / "programme.mp3", programme_signal(seconds))
    ref = place_in_cache(agent, mp3, "audio/mpeg")
    province = Province(broker, key)
    samples: list[tuple[float, float, float, float, float, float, float]] = []
    try:
        agent.start()
        wait_online(province, DEVICES[:1])
        assert agent.proc is not None
        apid = agent.proc.pid
        # Reaped children's CPU: the ffmpeg that decodes the MP3 ahead of time.
        decode0 = cpu_seconds(apid, children=True)
        at = float(math.ceil(time.time() + 4.0))
        schedule_all(province, {DEVICES[0]: ref}, 100, at, "programme")
        time.sleep(max(0.0, at + 1.0 - time.time()))  # sounding; MP3 decoded ahead
        decode_cpu = cpu_seconds(apid, children=True) - decode0
        ppid = player_of(apid)
        end = at + seconds - 1.0
        while time.time() < end:
            t = time.monotonic()
            a = (cpu_seconds(apid), rss_mb(apid), pss_mb(apid))
            p = (cpu_seconds(ppid), rss_mb(ppid), pss_mb(ppid))
            samples.append((t, *a, *p))
            time.sleep(1.0)
        proof = province.wait_for(lambda m: m.topic == f"tcs/v1/dev/{DEVICES[0]}/proof", 15)
        assert proof.payload  # the item played to its end and was reported
    finally:
        province.close()
        agent.stop()
    dt = samples[-1][0] - samples[0][0]
    agent_cpu = 100 * (samples[-1][1] - samples[0][1]) / dt
    player_cpu = 100 * (samples[-1][4] - samples[0][4]) / dt
    peak = [max(s[i] for s in samples) for i in (2, 3, 5, 6)]
    total_pss = max(s[3] + s[6] for s in samples)
    return [
        f"MP3 {seconds:.0f} s 128 kbit/s, sampled every 1 s for {dt:.0f} s while sounding:",
        f"  agent process    CPU {agent_cpu:5.1f} % of a core   peak RSS {peak[0]:5.1f} MB"
        f"   peak PSS {peak[1]:5.1f} MB",
        f"  player process   CPU {player_cpu:5.1f} % of a core   peak RSS {peak[2]:5.1f} MB"
        f"   peak PSS {peak[3]:5.1f} MB",
        f"  total            CPU {agent_cpu + player_cpu:5.1f} % of a core"
        f"                      peak PSS {total_pss:5.1f} MB",
        f"  decode ahead (ffmpeg, once per media, before the start): {decode_cpu:.2f} CPU s",
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--mp3-s", type=float, default=60.0)
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--skip-skew", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tcs-bench-fleet-"))
    server = start_private_sink(work / "pulse")  # the agents (children) inherit it
    broker = start_broker(
        work / "broker", [DeviceEntry(d, ("vn-48",)) for d in DEVICES], console_users=("central",)
    )
    lines: list[str] = []
    try:
        if not args.skip_skew:
            lines += skew_bench(work, broker, server, args.trials)
        if not args.skip_cpu:
            lines += cpu_bench(work, broker, args.mp3_s)
    finally:
        broker.stop()
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
