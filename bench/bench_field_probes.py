"""Idle CPU and RSS of an agent with every health probe running at its rate, the cost
of one probe round (kernel files and a full AT exchange with a simulated modem), and
`tcs-agent doctor` wall time on a healthy device.

1. A real `tcs-agent run` (TLS broker, [amplifier] serial-relay on a socat pty,
   [modem] configured) left idle for --idle seconds: CPU and RSS from /proc. The
   health monitor samples every min(heartbeat_s, 60) s, the modem service probes
   every probe_s (60 s); here the modem's USB id is absent from this machine's /sys,
   so each modem probe is a sysfs scan.
2. In this process: one HealthMonitor round over the real /sys and /proc, and one
   modem probe (AT+CSQ, +COPS?, +CREG?, +CCLK?) against the socat-pty simulator,
   timed over --rounds; the CPU share at the default rates is cost / 60 s.
3. `tcs-agent doctor -c FILE` as a subprocess, --doctor-runs times (healthy device:
   broker reachable, TLS, login, key, storage).

    .venv/bin/python bench/bench_field_probes.py [--idle 120] [--rounds 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from procstat import cpu_seconds, rss_mb  # noqa: E402
from support.agentproc import AgentProc, Province, TrustKey  # noqa: E402
from support.broker import DEFAULT_CONSOLE, DEFAULT_DEVICES, start_broker  # noqa: E402
from support.modem_sim import ModemSim, fake_usb_sysfs  # noqa: E402
from support.ptys import PtyPair  # noqa: E402
from support.relay_sim import RelaySim  # noqa: E402

from agent.probes.monitor import Sources, sample  # noqa: E402
from drivers.modem import Modem, UsbId  # noqa: E402

DEV = "dev-0001"
ON, OFF = bytes.fromhex("A00101A2"), bytes.fromhex("A00100A1")


def probe_round_costs(work: Path, rounds: int) -> tuple[float, float]:
    """(ms of CPU per health round, ms of CPU per modem probe) in this process."""
    work.mkdir(parents=True)
    src = Sources(work)
    sample(src)  # warm: first reads, vcgencmd lookup
    t0 = time.process_time()
    for _ in range(rounds):
        sample(src)
    health_ms = (time.process_time() - t0) / rounds * 1000
    sys_root, dev = work / "sys", work / "dev"
    dev.mkdir()
    fake_usb_sysfs(sys_root, "ttyUSB2")
    with PtyPair(dev / "ttyUSB2") as pair, ModemSim(pair.sim_end):
        modem = Modem(UsbId(0x2C7C, 0x0125, 2), sys_root=sys_root, dev_root=dev)
        assert modem.probe() is not None  # open + ATE0/CTZU outside the timing
        t0 = time.process_time()
        for _ in range(rounds):
            assert modem.probe() is not None
        modem_ms = (time.process_time() - t0) / rounds * 1000
        modem.close()
    return health_ms, modem_ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--idle", type=float, default=120.0, help="seconds of idle measurement")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--doctor-runs", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        health_ms, modem_ms = probe_round_costs(work / "probes", args.rounds)
        print(f"one health round (all kernel probes): {health_ms:.2f} ms CPU "
              f"-> {health_ms / 60_000 * 100:.4f} % of a core at 1/60 s")  # fmt: skip
        print(f"one modem probe (4 AT commands, pty): {modem_ms:.2f} ms CPU "
              f"-> {modem_ms / 60_000 * 100:.4f} % of a core at 1/60 s")  # fmt: skip

        broker = start_broker(work / "broker", DEFAULT_DEVICES, console_users=DEFAULT_CONSOLE)
        key = TrustKey("vn-48-emergency")
        with (
            PtyPair(work / "relay") as relay,
            RelaySim(relay.sim_end, on=ON, off=OFF),
        ):
            extra = (
                f'\n[amplifier]\nkind = "serial-relay"\nport = "{relay.driver_end}"\n'
                'on_bytes = "A0 01 01 A2"\noff_bytes = "A0 01 00 A1"\n'
                '\n[modem]\nusb_id = "2c7c:0125"\nprobe_s = 60\n'
            )
            agent = AgentProc.create(work / "agent", broker, DEV, ["vn-48"], [key], extra=extra)
            try:
                agent.start()
                province = Province(broker, key)
                province.wait_for(lambda m: m.topic.endswith("/state") and m.json()["online"], 20)
                time.sleep(5)  # start-up settles (imports, first probe round)
                assert agent.proc is not None
                pid = agent.proc.pid
                c0, t0 = cpu_seconds(pid), time.monotonic()
                time.sleep(args.idle)
                cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - t0) * 100
                print(f"agent idle {args.idle:.0f} s (probes at their rates): "
                      f"CPU {cpu:.3f} % of a core, RSS {rss_mb(pid):.1f} MB")  # fmt: skip
                agent.stop()
                province.close()

                walls = []
                for _ in range(args.doctor_runs):
                    t = time.monotonic()
                    out = subprocess.run(
                        [sys.executable, "-m", "agent", "doctor", "-c", str(agent.config)],
                        capture_output=True, text=True, cwd=REPO, timeout=60,
                    )  # fmt: skip
                    walls.append(time.monotonic() - t)
                failed = [ln for ln in out.stdout.splitlines() if ln.startswith("✗")]
                print(f"doctor wall time over {len(walls)} runs: median "
                      f"{statistics.median(walls):.2f} s, max {max(walls):.2f} s "
                      f"(failed checks on this machine: {failed or 'none'})")  # fmt: skip
            finally:
                agent.kill()
                broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
