"""Share of RAM in use, from MemTotal and MemAvailable in `/proc/meminfo`.

MemAvailable (not MemFree) because the page cache full of media is reclaimable and
would otherwise make a healthy 512 MB Pi Zero look full. Read because a leaking
player is the usual cause of a device that goes silent after weeks.
"""

from __future__ import annotations

from pathlib import Path

from agent.probes import read_text


def mem_used_pct(proc_root: Path = Path("/proc")) -> float | None:
    text = read_text(proc_root / "meminfo")
    if text is None:
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if key in ("MemTotal", "MemAvailable") and parts:
            try:
                fields[key] = int(parts[0])
            except ValueError:
                return None
    total, avail = fields.get("MemTotal"), fields.get("MemAvailable")
    if total is None or avail is None or total <= 0 or not 0 <= avail <= total:
        return None
    return round(100.0 * (total - avail) / total, 1)
