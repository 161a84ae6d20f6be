"""Publish -> ack latency on loopback, and idle RSS / CPU of a connected agent.

Starts the project's broker (TLS, passwords, ACL) and a real `tcs-agent run`
subprocess, sends N signed `volume.set` commands one at a time from a province
client, and times each from publish to the device's ack arriving. Then leaves the
agent idle (connected, heartbeat every 60 s) and reads its RSS and CPU time from
/proc.

    .venv/bin/python bench/bench_agent_link.py [-n 1000] [--idle 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from procstat import cpu_seconds, rss_mb  # noqa: E402
from support.agentproc import AgentProc, Province, TrustKey  # noqa: E402
from support.broker import DEFAULT_CONSOLE, DEFAULT_DEVICES, start_broker  # noqa: E402

DEV = "dev-0001"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = start_broker(work / "broker", DEFAULT_DEVICES, console_users=DEFAULT_CONSOLE)
        key = TrustKey("vn-48-emergency")
        agent = AgentProc.create(work / "agent", broker, DEV, ["vn-48"], [key])
        try:
            agent.start()
            province = Province(broker, key)
            province.wait_for(lambda m: m.topic.endswith("/state") and m.json()["online"], 15)
            # Warm up (imports, first SQLite pages).
            for i in range(20):
                province.wait_ack(province.send(DEV, "volume.set", {"level": i}))
            lat: list[float] = []
            for i in range(args.n):
                jti, token = province.token(DEV, "volume.set", {"level": i % 101})
                t0 = time.perf_counter()
                province.publish(f"tcs/v1/dev/{DEV}/cmd", token)
                province.wait_ack(jti)
                lat.append((time.perf_counter() - t0) * 1000)
            lat.sort()
            p50 = statistics.median(lat)
            p99 = lat[int(0.99 * (len(lat) - 1))]
            print(
                f"publish->ack over {args.n} commands: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
                f"max {lat[-1]:.2f} ms, "
                f"throughput {args.n / (sum(lat) / 1000):.0f} cmd/s sequential"
            )

            assert agent.proc is not None
            pid = agent.proc.pid
            time.sleep(2)
            c0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(args.idle)
            c1, t1 = cpu_seconds(pid), time.monotonic()
            print(
                f"idle {args.idle:.0f} s connected: "
                f"CPU {100 * (c1 - c0) / (t1 - t0):.3f} % of a core, "
                f"RSS {rss_mb(pid):.1f} MB"
            )
            province.close()
        finally:
            agent.stop()
            broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
