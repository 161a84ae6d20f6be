"""Alert publish -> first audible sample, from silence (cold) and back to back (warm),
with the simplest possible peer measured side by side in the same run (issue 8).

    .venv/bin/python bench/bench_playout_silence.py [--silences 5,45,75] [--warm 12]
        [--peer 12] [--cold-starts 3]

A real agent + Mosquitto (TLS, passwords, ACL) + a private PulseAudio null sink,
recorded from its monitor. The agent runs with the default `[audio]` settings (no
amplifier configured, amp_lead_s = 2, amp_idle_s = 30), so "silence" is what the
field sees. Figures (ms, p50/p99/max):
  cold start   the first alert right after the agent came online (--cold-starts fresh agents)
  silence N s  one alert after N seconds of silence, for each N in --silences
  warm         --warm alerts back to back (0.3 s apart)
  peer         `mosquitto_sub | paplay` on the same broker and sink: the PCM is the
               MQTT payload itself; the clock starts at publish, as for the agent
The clock starts just before the province signs and publishes the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sink import start_private_sink  # noqa: E402
from support.agentproc import Province  # noqa: E402
from support.broker import DEFAULT_CONSOLE, DEFAULT_DEVICES, start_broker  # noqa: E402
from support.playout import DEVICE, place_in_cache, ref_json, sound_agent, wait_online  # noqa: E402
from support.pulse import Recorder, programme_signal, write_wav  # noqa: E402

THRESHOLD_DB = -40.0
# The recording's wall clock is known to about its 10 ms capture latency, so a sound
# that starts within a few ms of publish may be stamped a little before it; look that
# far back so it is not missed (figures may then be slightly negative).
LOOK_BACK_S = 0.05
PEER_DEVICE = "dev-0002"


def stats(name: str, xs: list[float]) -> None:
    a = np.array(xs) * 1000.0
    print(f"{name:44s} n={len(a):3d} p50={np.percentile(a, 50):7.1f} "
          f"p99={np.percentile(a, 99):7.1f} max={a.max():7.1f} ms")  # fmt: skip


def alert(province: Province, rec: Recorder, alert_id: str, ref: Any) -> float:
    t0 = time.time()
    jti = province.send(
        DEVICE, "alert.start",
        {"alert_id": alert_id, "repeat": 1, "chime": False, "media": [ref_json(ref)]},
    )  # fmt: skip
    province.wait_ack(jti, status="done", timeout=60)
    rec.wait_silence_after(time.time())
    heard = rec.first_audible(THRESHOLD_DB, after=t0 - LOOK_BACK_S)
    if heard is None:
        raise RuntimeError(f"{alert_id}: nothing audible at the sink")
    return heard - t0


def peer(broker: Any, province: Province, rec: Recorder, pcm: bytes) -> float:
    """One message through `mosquitto_sub | paplay`: publish -> first audible sample."""
    topic = f"tcs/v1/dev/{PEER_DEVICE}/cmd"
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", broker.hostname, "-p", str(broker.port), "--cafile",
         str(broker.ca_file), "-u", PEER_DEVICE, "-P", broker.password(PEER_DEVICE),
         "-t", topic, "-C", "1", "-N", "-q", "1", "-V", "mqttv5"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    play = subprocess.Popen(
        ["paplay", "--raw", "--format=s16le", "--rate=48000", "--channels=1",
         "--latency-msec=10"],
        stdin=sub.stdout,
    )  # fmt: skip
    assert sub.stdout is not None
    sub.stdout.close()
    time.sleep(1.0)  # let it connect and subscribe (a bench, not a test)
    t0 = time.time()
    province.publish(topic, pcm)
    play.wait(30)
    sub.wait(5)
    rec.wait_silence_after(time.time() + 0.2)
    heard = rec.first_audible(THRESHOLD_DB, after=t0 - LOOK_BACK_S)
    if heard is None:
        raise RuntimeError("peer: nothing audible at the sink")
    return heard - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--silences", default="5,45,75")
    ap.add_argument("--warm", type=int, default=12)
    ap.add_argument("--peer", type=int, default=12)
    ap.add_argument("--cold-starts", type=int, default=3)
    args = ap.parse_args()
    silences = [float(s) for s in args.silences.split(",") if s]

    work = Path(tempfile.mkdtemp(prefix="tcs-bench-silence-"))
    server = start_private_sink(work / "pulse")
    broker = start_broker(work / "broker", DEFAULT_DEVICES, console_users=DEFAULT_CONSOLE)
    rec = Recorder(server.env)
    beep = programme_signal(0.3)
    pcm = (np.clip(beep, -1, 1) * 32767).astype("<i2").tobytes()
    cold: list[float] = []
    after: dict[float, list[float]] = {s: [] for s in silences}
    warm: list[float] = []
    peers: list[float] = []
    try:
        rec.start()
        for n in range(args.cold_starts):
            agent, province, _ = sound_agent(work / f"agent{n}", broker)
            ref = place_in_cache(agent, write_wav(work / "beep.wav", beep))
            with agent:
                wait_online(province)
                cold.append(alert(province, rec, f"cold{n}", ref))
                if n == 0:
                    for s in silences:
                        time.sleep(s)
                        after[s].append(alert(province, rec, f"s{s:.0f}", ref))
                    for i in range(args.warm):
                        time.sleep(0.3)
                        warm.append(alert(province, rec, f"w{i}", ref))
                        if i < args.peer:  # the peer, interleaved: same load, same run
                            time.sleep(0.3)
                            peers.append(peer(broker, province, rec, pcm))
            province.close()
    finally:
        rec.stop()
        broker.stop()
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load1 {os.getloadavg()[0]:.1f}")  # fmt: skip
    stats("alert, first after agent start (cold)", cold)
    for s, xs in after.items():
        stats(f"alert after {s:.0f} s of silence", xs)
    stats("alert, back to back (warm)", warm)
    stats("peer: mosquitto_sub | paplay", peers)
    # The recording's clock offset cancels in the difference (same sink, same run).
    extra = (np.percentile(warm, 50) - np.percentile(peers, 50)) * 1000
    print(f"agent warm p50 - peer p50 = {extra:.1f} ms (what verify, plan and place cost)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
