"""Seconds since the kernel booted, from `/proc/uptime`.

Read because an uptime that keeps resetting is the signature of brown-outs and
watchdog reboots, which the agent's own uptime (heartbeat `uptime_s`) cannot show.
"""

from __future__ import annotations

import math
from pathlib import Path

from agent.probes import read_text


def system_uptime_s(proc_root: Path = Path("/proc")) -> int | None:
    text = read_text(proc_root / "uptime", 1024)
    if text is None:
        return None
    try:
        value = float(text.split()[0])
    except (IndexError, ValueError):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)
