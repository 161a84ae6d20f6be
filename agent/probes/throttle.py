"""Under-voltage and throttling since boot: the Raspberry Pi firmware's `get_throttled` word.

Read from sysfs (`/sys/devices/platform/soc/soc:firmware/get_throttled`, hex) or, when
that is absent, from `vcgencmd get_throttled` (`throttled=0x50005`). Read because a
weak or long power cable on a pole is the commonest cause of SD corruption and random
reboots, and the firmware is the only witness: bits 0-3 are the state now, bits 16-19
"has happened since boot".
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from agent.probes import read_text

SYSFS_FILE = "devices/platform/soc/soc:firmware/get_throttled"

_UNDER_VOLTAGE = 1 << 0
_FREQ_CAPPED = 1 << 1
_THROTTLED = 1 << 2
_SOFT_TEMP = 1 << 3
_SINCE_BOOT = 16


@dataclass(frozen=True)
class Throttle:
    under_voltage_now: bool
    under_voltage_since_boot: bool
    throttled_now: bool
    throttled_since_boot: bool

    def as_json(self) -> dict[str, bool]:
        return {
            "under_voltage_now": self.under_voltage_now,
            "under_voltage_since_boot": self.under_voltage_since_boot,
            "throttled_now": self.throttled_now,
            "throttled_since_boot": self.throttled_since_boot,
        }


def parse(word: int) -> Throttle:
    slow = _FREQ_CAPPED | _THROTTLED | _SOFT_TEMP
    return Throttle(
        under_voltage_now=bool(word & _UNDER_VOLTAGE),
        under_voltage_since_boot=bool(word & (_UNDER_VOLTAGE << _SINCE_BOOT)),
        throttled_now=bool(word & slow),
        throttled_since_boot=bool(word & (slow << _SINCE_BOOT)),
    )


def _word(text: str) -> int | None:
    text = text.strip()
    if text.startswith("throttled="):
        text = text.removeprefix("throttled=")
    try:
        word = int(text, 16)
    except ValueError:
        return None
    return word if 0 <= word < 1 << 32 else None


def _vcgencmd() -> str | None:
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "get_throttled"], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def throttle(sys_root: Path = Path("/sys"), *, use_vcgencmd: bool = True) -> Throttle | None:
    text = read_text(sys_root / SYSFS_FILE, 256)
    if text is None and use_vcgencmd:
        text = _vcgencmd()
    if text is None:
        return None
    word = _word(text)
    return parse(word) if word is not None else None
