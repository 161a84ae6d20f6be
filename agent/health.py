"""Device health probes for the heartbeat (PROTOCOL §6.2).

Each probe returns None when it cannot read its source: the province must see
"unknown", never a guess (a made-up 0 °C hides a cooking enclosure).
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_temp_c(thermal: Path = Path("/sys/class/thermal/thermal_zone0/temp")) -> float | None:
    """SoC temperature from the kernel thermal zone (millidegrees Celsius on a Pi).

    Read because sealed outdoor boxes in the Vietnamese summer overheat and throttle
    audio decoding; the province wants to see it before the device dies.
    """
    try:
        return round(int(thermal.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def load1() -> float | None:
    """One-minute load average (os.getloadavg, i.e. /proc/loadavg)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def mem_used_pct(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    """Share of RAM in use, from MemTotal and MemAvailable in /proc/meminfo.

    MemAvailable (not MemFree) because the page cache full of media is reclaimable
    and would otherwise make a healthy 512 MB Pi Zero look full.
    """
    try:
        fields: dict[str, int] = {}
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0])
        total, avail = fields["MemTotal"], fields["MemAvailable"]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    if total <= 0:
        return None
    return round(100.0 * (total - avail) / total, 1)


def disk_free_mb(path: Path) -> int | None:
    """Free space for the agent's storage folder (statvfs, blocks available to non-root)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return int(st.f_bavail * st.f_frsize // (1024 * 1024))
