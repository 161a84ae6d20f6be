"""Quiet hours (PROTOCOL §5.2), pure.

Quiet hours are a daily local-time span, start included, end excluded, possibly
wrapping midnight (22:00-05:00). A normal or priority item (< 90) that would
sound inside them is not played (outcome `skipped`, reason `quiet_hours`);
emergencies (>= 90) always sound. "Would sound" means: its start falls inside,
or, when its duration is known, any part of [start, start + duration) does.

The configuration's `agent.config.QuietHours` is accepted through the
`QuietHoursLike` protocol, so this package does not depend on the config module;
`parse_quiet_hours` is a tiny parser of the same shape for tests and tools.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from agent.model import ScheduleItem, is_emergency
from agent.scheduler.occurrences import occurrences

_DAY_MIN = 24 * 60
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class QuietHoursLike(Protocol):
    """Anything with the shape of `agent.config.QuietHours`."""

    @property
    def start_min(self) -> int: ...

    @property
    def end_min(self) -> int: ...

    def contains(self, minute_of_day: int) -> bool: ...


@dataclass(frozen=True)
class QuietWindow:
    """Quiet hours as minutes of the local day; `contains` is start-included, end-excluded."""

    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        for name, value in (("start_min", self.start_min), ("end_min", self.end_min)):
            if not 0 <= value < _DAY_MIN:
                raise ValueError(f"quiet hours {name} must be 0-1439, not {value}")
        if self.start_min == self.end_min:
            raise ValueError("quiet hours start equals end (no time, or all day?)")

    def contains(self, minute_of_day: int) -> bool:
        if self.start_min < self.end_min:
            return self.start_min <= minute_of_day < self.end_min
        return minute_of_day >= self.start_min or minute_of_day < self.end_min


def parse_quiet_hours(text: str) -> QuietWindow:
    """Parse `HH:MM-HH:MM` (24 h clock); ValueError names what is wrong."""
    m = _HHMM.match(text.strip())
    if m is None:
        raise ValueError(f"quiet hours {text!r} are not HH:MM-HH:MM (e.g. '22:00-05:00')")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    return QuietWindow(h1 * 60 + m1, h2 * 60 + m2)


def hhmm(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def describe(quiet: QuietHoursLike) -> str:
    return f"{hhmm(quiet.start_min)}-{hhmm(quiet.end_min)}"


def _minute_of_day(at: datetime, tz: ZoneInfo) -> int:
    local = at.astimezone(tz)
    return local.hour * 60 + local.minute


def in_quiet(at: datetime, tz: ZoneInfo, quiet: QuietHoursLike | None) -> bool:
    """Whether instant `at` falls inside quiet hours (local minute of `at` in `tz`)."""
    return quiet is not None and quiet.contains(_minute_of_day(at, tz))


def next_quiet_start(after: datetime, tz: ZoneInfo, quiet: QuietHoursLike) -> datetime:
    """The first instant strictly after `after` at which quiet hours begin."""
    local = after.astimezone(tz)
    for days in range(3):
        day = (local + timedelta(days=days)).date()
        naive = datetime(day.year, day.month, day.day) + timedelta(minutes=quiet.start_min)
        candidate = naive.replace(tzinfo=tz)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: quiet hours begin every day")


def sounds_in_quiet(
    at: datetime, tz: ZoneInfo, quiet: QuietHoursLike | None, duration_s: float | None = None
) -> bool:
    """Whether sound beginning at `at` (lasting `duration_s`, if known) touches quiet hours."""
    if quiet is None:
        return False
    if in_quiet(at, tz, quiet):
        return True
    if duration_s is None or duration_s <= 0:
        return False
    # The span starts outside quiet hours, so it meets them iff a quiet start lies inside it.
    # (UTC: `+` on a datetime in a zone with DST would be wall-clock arithmetic.)
    end = at.astimezone(UTC) + timedelta(seconds=duration_s)
    return next_quiet_start(at, tz, quiet) < end


def quiet_warnings(
    items: Iterable[ScheduleItem],
    tz: ZoneInfo,
    quiet: QuietHoursLike | None,
    now: datetime,
    horizon: timedelta,
    durations: Mapping[str, float] | None = None,
) -> list[str]:
    """Warnings for the `schedule.set` ack (§6.3): items that will be skipped for quiet hours.

    One line per item with at least one non-emergency occurrence in [now, now +
    horizon) that would sound inside quiet hours, naming the item, the first such
    time (local, with offset) and how many there are in the horizon.
    """
    if quiet is None:
        return []
    durations = durations or {}
    out: list[str] = []
    for item in items:
        if is_emergency(item.priority):
            continue
        hits = [
            occ
            for occ in occurrences(item, tz, now, now + horizon)
            if sounds_in_quiet(occ.at, tz, quiet, durations.get(item.id))
        ]
        if not hits:
            continue
        first = hits[0].at.astimezone(tz).isoformat(timespec="minutes")
        days = horizon / timedelta(days=1)
        out.append(
            f"item {item.id!r} at {first} would sound inside quiet hours {describe(quiet)} "
            f"and will not play ({len(hits)} occurrence(s) in the next {days:g} day(s))"
        )
    return out
