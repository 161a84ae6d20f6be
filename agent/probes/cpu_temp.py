"""CPU temperature from the kernel thermal zone (`/sys/class/thermal/thermal_zone0/temp`).

Read because sealed outdoor boxes in the Vietnamese summer overheat and throttle audio
decoding; the province wants to see it before the device dies. The file holds
millidegrees Celsius; a value outside -40..150 °C is a broken sensor, not a reading.
"""

from __future__ import annotations

from pathlib import Path

from agent.probes import read_int


def cpu_temp_c(sys_root: Path = Path("/sys")) -> float | None:
    milli = read_int(sys_root / "class/thermal/thermal_zone0/temp")
    if milli is None or not -40_000 <= milli <= 150_000:
        return None
    return round(milli / 1000.0, 1)
