"""Device health probes (PROTOCOL §6.2 heartbeat, issue 10).

One module per probe; each reads one kernel source and returns None when it cannot
tell (file missing, unreadable, garbage): the province must see "unknown", never a
guess. Every probe takes the root of the tree it reads (`/sys`, `/proc`, `/dev`) so
tests run it against fake trees. `monitor.HealthMonitor` runs them off the event
loop at their rates and raises events on change.
"""

from __future__ import annotations

import math
from pathlib import Path


def read_text(path: Path, limit: int = 65536) -> str | None:
    """A small kernel file's text, bounded; None when missing or unreadable."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    if len(data) > limit:
        return None  # not a kernel attribute of the kind we expect: do not guess
    return data.decode("utf-8", errors="replace")


def read_first_number(path: Path) -> float | None:
    """The first field of a /proc line such as loadavg or uptime, if finite and >= 0."""
    text = read_text(path, 1024)
    if text is None:
        return None
    try:
        value = float(text.split()[0])
    except (IndexError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def read_int(path: Path, base: int = 10) -> int | None:
    """A kernel attribute holding one integer; None when missing or not an integer."""
    text = read_text(path, 256)
    if text is None:
        return None
    try:
        return int(text.strip(), base)
    except ValueError:
        return None
