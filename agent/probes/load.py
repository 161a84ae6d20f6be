"""One-minute load average from `/proc/loadavg`.

Read because a Pi whose load stays above its core count decodes audio late; the
province compares it across devices running the same agent version.
"""

from __future__ import annotations

from pathlib import Path

from agent.probes import read_first_number


def load1(proc_root: Path = Path("/proc")) -> float | None:
    value = read_first_number(proc_root / "loadavg")
    return None if value is None else round(value, 2)
