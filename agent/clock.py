"""Whether the wall clock can be trusted (PROTOCOL §3, last paragraph).

A Pi has no RTC: at boot its clock is whatever fake-hwclock saved, or 1970, until
NTP fixes it. Expiry checks and schedules must not believe such a clock. The
kernel knows whether NTP disciplined it: `adjtimex(2)` reports `TIME_ERROR` or the
`STA_UNSYNC` status bit while unsynchronised. A hardware RTC that set the clock
at boot shows as `/sys/class/rtc/rtc0/hctosys` = 1.

While untrusted, the durable time floor (agent/timefloor.py: trusted wall time
seen and `iat`s of accepted commands) is the lower bound for the time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent import clock_sources

Source = Literal["ntp", "rtc", "modem", "gps", "command", "none"]
TrustMode = Literal["auto", "always", "never"]

_TIME_ERROR = 5
_STA_UNSYNC = 0x0040


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (glibc, 64-bit and 32-bit longs alike).
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # find_library runs `ldconfig -p` (~1 ms): once per process, not per command.
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def kernel_ntp_synced() -> bool | None:
    """Ask the kernel (adjtimex with modes=0, read-only) whether NTP synchronised the clock.

    Returns None when the call is unavailable (non-Linux, seccomp), so callers can
    report the probe as failed instead of guessing.
    """
    libc = _libc()
    if libc is None:
        return None
    try:
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not (tx.status & _STA_UNSYNC)


def rtc_set_clock(sys_rtc: Path = Path("/sys/class/rtc/rtc0")) -> bool:
    """True when a hardware RTC set the system clock at boot (`hctosys` = 1)."""
    try:
        return (sys_rtc / "hctosys").read_text().strip() == "1"
    except OSError:
        return False


@dataclass(frozen=True)
class ClockStatus:
    trusted: bool
    source: Source

    def as_json(self) -> dict[str, object]:
        return {"synced": self.trusted, "source": self.source}


# A floor raised by an accepted iat may be a little ahead of a good clock (the
# province's clock runs ahead, or the leeway): only further below it is a clock wrong.
FLOOR_LEEWAY_S = 30


def clock_status(mode: TrustMode, *, lower_bound: float, wall: float | None = None
                 ) -> ClockStatus:
    """Combine the configured mode with the kernel's word and the time floor.

    A wall clock below the floor (`lower_bound`, agent/timefloor.py) is not trusted,
    whatever NTP or the configuration say: NTP spoofed into the past, or an RTC with
    a dead battery, must not reopen the replay window or replay yesterday's programme.
    """
    if wall is not None and wall < lower_bound - FLOOR_LEEWAY_S:
        return ClockStatus(False, "command" if lower_bound > 0 else "none")
    if mode == "always":
        return ClockStatus(True, "ntp")
    if mode == "auto":
        if kernel_ntp_synced():
            return ClockStatus(True, "ntp")
        if rtc_set_clock():
            return ClockStatus(True, "rtc")
        # Network time from the modem, an RTC module set up late (agent/clock_sources.py).
        if (other := clock_sources.trusted_source()) is not None:
            return ClockStatus(True, other)
    return ClockStatus(False, "command" if lower_bound > 0 else "none")
