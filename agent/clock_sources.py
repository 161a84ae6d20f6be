"""Trusted time without NTP: the modem's network time (NITZ) and a hardware RTC.

A Pi has no RTC, and while its clock is untrusted the agent holds scheduled
programmes; a village without a data link after a power cut would hear nothing but
emergencies. Two other witnesses of the time often exist: the cellular network
(NITZ, read from the modem with `AT+CCLK?` once `AT+CTZU=1` let it follow the
network) and a battery-backed RTC module (DS3231 class, `/sys/class/rtc/rtc0`).

Each source keeps its last reading with the monotonic time it was taken, so
`now()` costs nothing and does no I/O (agent/clock.py asks on every command); the
readings are refreshed in worker threads (the modem's probe loop, the health
monitor). agent/clock.py consults `trusted_source()`: the first registered source
whose time agrees with the wall clock names the clock's source in the heartbeat
(PROTOCOL §6.2 `clock.source`). When the kernel clock is not synchronised and a
source disagrees with it, `step_clock()` sets it from the source (needs
CAP_SYS_TIME; without it the clock stays untrusted and the log says why).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger(__name__)

SourceName = Literal["rtc", "modem", "gps"]

# Anything before this cannot be a real reading: RTCs with a flat battery restart at
# 2000-01-01, modems without network time at 1980 or 2000.
EARLIEST = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
AGREE_S = 10.0  # a source and the wall clock within this agree
MAX_AGE_S = 24 * 3600.0  # a reading older than this (by the monotonic clock) is stale


class TimeSource(Protocol):
    name: SourceName

    def now(self) -> float | None:
        """The source's idea of the current Unix time, from its last reading; no I/O."""
        ...


class _Extrapolated:
    """A reading (unix time, monotonic then) carried forward on the monotonic clock."""

    name: SourceName

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._mono = monotonic

    def _reading(self) -> tuple[float, float] | None:
        raise NotImplementedError

    def now(self) -> float | None:
        reading = self._reading()
        if reading is None:
            return None
        at, mono_then = reading
        age = self._mono() - mono_then
        if at < EARLIEST or not 0 <= age <= MAX_AGE_S:
            return None
        return at + age


class NetworkTime(_Extrapolated):
    """The cellular network's time, as the modem driver last read it (drivers/modem.py)."""

    name: SourceName = "modem"

    def __init__(
        self,
        reading: Callable[[], tuple[float, float] | None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(monotonic)
        self._get = reading

    def _reading(self) -> tuple[float, float] | None:
        return self._get()


class RtcTime(_Extrapolated):
    """A hardware RTC's time (`/sys/class/rtc/rtc0/since_epoch`), refreshed by `refresh()`."""

    name: SourceName = "rtc"

    def __init__(
        self, sys_root: Path = Path("/sys"), monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(monotonic)
        self._file = sys_root / "class/rtc/rtc0/since_epoch"
        self._last: tuple[float, float] | None = None

    def present(self) -> bool:
        return self._file.exists()

    def refresh(self) -> None:
        """Read the RTC (blocking: call from a worker thread)."""
        try:
            seconds = int(self._file.read_text().strip())
        except (OSError, ValueError):
            self._last = None
            return
        self._last = (float(seconds), self._mono())

    def _reading(self) -> tuple[float, float] | None:
        return self._last


_lock = threading.Lock()
_sources: list[TimeSource] = []


def register(source: TimeSource) -> None:
    with _lock:
        if source not in _sources:
            _sources.append(source)


def unregister(source: TimeSource) -> None:
    with _lock:
        if source in _sources:
            _sources.remove(source)


def registered() -> list[TimeSource]:
    with _lock:
        return list(_sources)


def trusted_source(wall: float | None = None) -> SourceName | None:
    """The first registered source that agrees with the wall clock, or None.

    The one function agent/clock.py calls (after the kernel's NTP flag and hctosys).
    """
    wall = time.time() if wall is None else wall
    for source in registered():
        t = source.now()
        if t is not None and abs(t - wall) <= AGREE_S:
            return source.name
    return None


def step_clock(source: TimeSource, *, kernel_synced: bool | None) -> bool:
    """Set the system clock from `source` when NTP is not keeping it and they disagree.

    Returns True when the clock was stepped. Blocking-free but privileged: needs
    CAP_SYS_TIME (the systemd unit grants it); failures are logged once per call.
    """
    if kernel_synced:
        return False
    t = source.now()
    if t is None or abs(t - time.time()) <= AGREE_S:
        return False
    try:
        time.clock_settime(time.CLOCK_REALTIME, t)
    except OSError as e:
        log.warning("cannot set the clock from %s time: %s (needs CAP_SYS_TIME)", source.name, e)
        return False
    log.warning("clock set from %s time to %s", source.name, datetime.fromtimestamp(t, UTC))
    return True
