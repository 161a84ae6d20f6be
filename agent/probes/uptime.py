"""Seconds since the kernel booted, from `/proc/uptime`.

Read because an uptime that keeps resetting is the signature of brown-outs and
watchdog reboots, which the agent's own uptime (heartbeat `uptime_s`) cannot show.
"""

from __future__ import annotations

from pathlib import Path

from agent.probes import read_first_number


def system_uptime_s(proc_root: Path = Path("/proc")) -> int | None:
    value = read_first_number(proc_root / "uptime")
    return None if value is None else int(value)
