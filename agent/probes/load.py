"""One-minute load average from `/proc/loadavg`.

Read because a Pi whose load stays above its core count decodes audio late; the
province compares it across devices running the same agent version.
"""

from __future__ import annotations

import math
from pathlib import Path

from agent.probes import read_text


def load1(proc_root: Path = Path("/proc")) -> float | None:
    text = read_text(proc_root / "loadavg", 1024)
    if text is None:
        return None
    try:
        value = float(text.split()[0])
    except (IndexError, ValueError):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return round(value, 2)
