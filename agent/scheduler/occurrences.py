"""Occurrence instants of schedule items (PROTOCOL §5.2), pure.

An item's `rrule` (RFC 5545, no DTSTART) is evaluated by python-dateutil in the
device's configured zone, on *local wall time*: a 05:30 programme stays at 05:30
local across a DST change (Vietnam has none; other zones do). A local time that
does not exist (spring-forward gap) is taken with the offset before the change,
i.e. it lands just after the gap; an ambiguous one (fall-back) is its first
instance, so each rule instance gives exactly one instant.

Every function takes the instants it needs; nothing here reads a clock.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import dateutil.rrule as _du
from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, HOURLY, MINUTELY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

from agent.model import MediaRef, ScheduleItem

# dateutil refuses a UTC UNTIL with a naive DTSTART (and a local UNTIL with an aware
# one); we evaluate on naive local wall time, so a `...Z` UNTIL is rewritten to local.
_UNTIL_UTC = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)
_MAX_RRULE_LEN = 1000
# Local wall time differs from a fixed offset by at most a DST shift (<= 2 h anywhere):
# naive-local searches are widened by this much, then filtered on exact instants.
_SLACK = timedelta(hours=3)

# Work bounds (issue 7): whatever a signed schedule says, one call evaluates at most
# MAX_EVALUATED rule instances (and dateutil examines at most MAX_EXAMINED candidate
# periods), and only from about one period before the range asked
# for (DTSTART is moved forward by whole periods, which keeps the series identical),
# so FREQ=MINUTELY from a year back costs what one day of it costs. The look-ahead
# for "next occurrence" stops at NEXT_HORIZON: a rule that never matches (Feb 30)
# is then a bounded walk, not one to year 9999.
MAX_EVALUATED = 500
MAX_EXAMINED = 3000
COUNT_EXAMINED = 2000  # once per COUNT rule, cached (see _count_to_until)
# The playout runner plans again at least every 30 s, so "next" only needs to see
# far enough to wake on time and prepare media: a week and a day covers any weekly
# programme; a yearly one is found once it is that close.
NEXT_HORIZON = timedelta(days=8)
_PERIOD: dict[int, timedelta] = {
    MINUTELY: timedelta(minutes=1),
    HOURLY: timedelta(hours=1),
    DAILY: timedelta(days=1),
    WEEKLY: timedelta(weeks=1),
}


class EvalCounter:
    """Work done by rule evaluation in this process: instances yielded (`evaluated`)
    and candidate periods dateutil examined (`examined`, filtered ones included).

    Instrumentation for the property tests and the bench, which assert the bounds
    by counting what the code actually did."""

    evaluated = 0
    examined = 0


class _Exhausted(Exception):
    """The examination budget of one evaluation ran out."""


_DaySet = tuple[Iterable[int | None], int, int]


class _BudgetInfo(_du._iterinfo):
    """dateutil's per-iteration helper, counting the candidate periods it hands out.

    A rule that never matches (FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30) yields
    nothing, so neither UNTIL nor a count of yields can stop dateutil walking to
    year 9999 (seconds of CPU); this budget does, deterministically."""

    def __init__(self, rule: rrule) -> None:
        super().__init__(rule)
        self.left = getattr(rule, "budget", MAX_EXAMINED)
        until = rule._until  # type: ignore[attr-defined]
        # dateutil checks UNTIL only on what it yields; we also stop examining periods
        # that begin after it, so a rule that matches nothing ends at UNTIL too.
        self.last = ((until.year, until.month, until.day) if until
                     else getattr(rule, "last_period", (MAXYEAR, 13, 32)))

    def _spend(self, period: tuple[int, int, int]) -> None:
        EvalCounter.examined += 1
        self.left -= 1
        if self.left < 0 or period > self.last:
            raise _Exhausted

    def ydayset(self, year: int, month: int, day: int) -> _DaySet:
        self._spend((year, 1, 1))
        return super().ydayset(year, month, day)

    def mdayset(self, year: int, month: int, day: int) -> _DaySet:
        self._spend((year, month, 1))
        return super().mdayset(year, month, day)

    def wdayset(self, year: int, month: int, day: int) -> _DaySet:
        self._spend((year, month, day))
        return super().wdayset(year, month, day)

    def ddayset(self, year: int, month: int, day: int) -> _DaySet:
        self._spend((year, month, day))
        return super().ddayset(year, month, day)


class _BoundedRule(rrule):
    """An rrule whose iteration uses _BudgetInfo: dateutil's own `_iter`, unchanged,
    run with that one global name rebound (no copy of its code, no global patch)."""

    _iter = types.FunctionType(
        rrule._iter.__code__,  # type: ignore[attr-defined]
        {**vars(_du), "_iterinfo": _BudgetInfo},
        "_iter",
    )


class _CountRule(_BoundedRule):
    """Evaluated once per rule (cached) to turn COUNT into UNTIL: a larger budget."""

    budget = COUNT_EXAMINED
    # Nothing the validator accepts lies beyond 2100 (agent/commands.py MAX_YEAR).
    last_period = (2101, 1, 1)


def _count_to_until(rule: rrule) -> rrule:
    """The same series with its COUNT replaced by the UNTIL of its last instance.

    A COUNT runs from the real DTSTART, so a COUNT rule could not be moved near the
    range asked for; once its last instance is known (one walk of at most COUNT
    instances, validated <= 2000, FREQ=DAILY or longer), it can. A series too sparse
    to finish within COUNT_EXAMINED periods ends where the walk stopped.
    """
    given = dict(rule._original_rule)  # type: ignore[attr-defined]
    kwargs: dict[str, object] = {
        "interval": rule._interval, "count": rule._count,  # type: ignore[attr-defined]
        "dtstart": rule._dtstart, "freq": rule._freq,  # type: ignore[attr-defined]
        "wkst": rule._wkst, **given,  # type: ignore[attr-defined]
    }
    last: datetime | None = None
    try:
        for at in _CountRule(**kwargs):  # type: ignore[arg-type]
            EvalCounter.evaluated += 1
            last = at
    except (_Exhausted, ValueError):
        pass
    kwargs["count"] = None
    # No instance at all: an UNTIL before DTSTART gives dateutil's empty series.
    start: datetime = rule._dtstart  # type: ignore[attr-defined]
    kwargs["until"] = last if last is not None else start - timedelta(seconds=1)
    return rrule(**kwargs)  # type: ignore[arg-type]


def _near(rule: rrule, lo: datetime, hi: datetime) -> rrule:
    """The same series, but starting at most about one period before `lo` and ending at `hi`.

    `lo`/`hi` are naive local; COUNT rules were turned into UNTIL ones by `_rule`.
    """
    # dateutil keeps the parsed rule in private attributes; they are stable since 2.7.
    start: datetime = rule._dtstart  # type: ignore[attr-defined]
    freq: int = rule._freq  # type: ignore[attr-defined]
    interval: int = rule._interval  # type: ignore[attr-defined]
    until: datetime | None = rule._until  # type: ignore[attr-defined]
    given: dict[str, object] = rule._original_rule  # type: ignore[attr-defined]
    kwargs: dict[str, object] = {
        "interval": interval, "count": rule._count, "dtstart": start,  # type: ignore[attr-defined]
        "freq": freq, "wkst": rule._wkst, **given,  # type: ignore[attr-defined]
        "until": hi if until is None else min(until, hi),
    }
    if rule._count is None and lo > start:  # type: ignore[attr-defined]
        if freq in _PERIOD:
            period = _PERIOD[freq] * interval
            k = (lo - start) // period - 1
            if k > 0:
                kwargs["dtstart"] = start + k * period
        elif freq in (MONTHLY, YEARLY):
            months = interval * (12 if freq == YEARLY else 1)
            span = (lo.year - start.year) * 12 + lo.month - start.month
            k = span // months - 1
            if k > 0:
                kwargs["dtstart"] = start + relativedelta(months=k * months)
                # dateutil derives the day (and, yearly, the month) from DTSTART when
                # the rule names none; moving DTSTART would clamp the 31st to the 30th,
                # so say explicitly what the original DTSTART implied.
                if not any(given.get(k2) for k2 in ("bymonthday", "byweekday", "byyearday",
                                                       "byweekno", "bynweekday")):
                    kwargs["bymonthday"] = start.day
                    if freq == YEARLY and not given.get("bymonth"):
                        kwargs["bymonth"] = start.month
    return _BoundedRule(**kwargs)  # type: ignore[arg-type]


def _between(rule: rrule, lo: datetime, hi: datetime) -> Iterator[datetime]:
    """Instances in [lo, hi] (naive local), in order; at most MAX_EVALUATED evaluated."""
    try:
        for n, at in enumerate(_near(rule, lo, hi), start=1):
            EvalCounter.evaluated += 1
            if at >= lo:
                yield at
            if n >= MAX_EVALUATED:
                return
    except _Exhausted:
        return
    except ValueError:
        # dateutil finds some BYHOUR/INTERVAL combinations empty only while iterating
        # ("Invalid combination of interval and byhour"): a series with no instances.
        return


@dataclass(frozen=True)
class Occurrence:
    """One instance of a schedule item.

    `at` is aware, expressed in the device's zone; `window_end` = `at` + `window_s`
    is the last instant it may still begin. `key` names the occurrence stably (the
    instant in UTC, so a change of the device's zone cannot rename it) and is what
    the planner's ledger records as played or skipped.
    """

    item_id: str
    at: datetime
    window_end: datetime
    priority: int
    key: str


def occurrence_key(item_id: str, at: datetime) -> str:
    """The ledger key of item `item_id`'s occurrence at instant `at` (aware)."""
    if at.tzinfo is None:
        raise ValueError("occurrence instant must be timezone-aware")
    utc = at.astimezone(UTC).replace(tzinfo=None)
    return f"{item_id}@{utc.isoformat()}Z"


def validate_rrule(text: str) -> None:
    """Raise ValueError naming what is wrong if `text` is not a usable RRULE.

    For argument checking of `schedule.set` (a bad rule is `bad_args`, not a crash
    later at play time).
    """
    _rule(_normalise(text, ZoneInfo("UTC")), datetime(2000, 1, 1))


def _normalise(text: str, tz: ZoneInfo) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("rrule must be a non-empty string")
    if len(text) > _MAX_RRULE_LEN:
        raise ValueError(f"rrule longer than {_MAX_RRULE_LEN} characters")
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if "\n" in body or "\r" in body:
        raise ValueError("rrule must be a single RRULE line (no DTSTART, EXDATE, ...)")
    if "DTSTART" in body.upper():
        raise ValueError("rrule must not contain DTSTART (the item's `start` is its first instant)")

    def to_local(m: re.Match[str]) -> str:
        utc = datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        return "UNTIL=" + utc.astimezone(tz).strftime("%Y%m%dT%H%M%S")

    return _UNTIL_UTC.sub(to_local, body)


@lru_cache(maxsize=1024)
def _rule(body: str, dtstart_local_naive: datetime) -> rrule:
    # Parsing is the expensive part of plan(); items are re-evaluated every few
    # seconds with the same rule, so cache the parsed object (rrule is immutable).
    try:
        rule = rrulestr(body, dtstart=dtstart_local_naive, cache=True)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"rrule {body!r} is not a valid RFC 5545 rule: {exc}") from None
    if not isinstance(rule, rrule):
        raise ValueError(f"rrule {body!r} is not a single RRULE")
    if rule._count is not None:  # type: ignore[attr-defined]
        rule = _count_to_until(rule)
    return rule


def _localise(naive: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: the first of an ambiguous pair; a non-existent wall time is normalised
    # through UTC so it becomes a real instant just after the gap.
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def _make(item: ScheduleItem, at: datetime) -> Occurrence:
    return Occurrence(
        item_id=item.id,
        at=at,
        # Through UTC: aware arithmetic within one ZoneInfo is wall-clock arithmetic.
        window_end=(at.astimezone(UTC) + timedelta(seconds=item.window_s)).astimezone(at.tzinfo),
        priority=item.priority,
        key=occurrence_key(item.id, at),
    )


def occurrences(
    item: ScheduleItem, tz: ZoneInfo, start: datetime, end: datetime
) -> list[Occurrence]:
    """The item's occurrences whose instant lies in [start, end), in time order.

    `start`/`end` are aware. `item.until` (inclusive, like RFC 5545 UNTIL) bounds
    the series; an item without `rrule` has the single occurrence `item.start`.
    Raises ValueError on a naive bound or an invalid rule.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("occurrences(): start and end must be timezone-aware")
    if end <= start:
        return []
    first = item.start.astimezone(tz)
    if item.rrule is None:
        ats = [first] if start <= first < end else []
    else:
        rule = _rule(_normalise(item.rrule, tz), first.replace(tzinfo=None))
        # Naive local bounds widened: local wall time is not monotonic in UTC across
        # a fall-back, so filter exactly on aware instants afterwards.
        lo = start.astimezone(tz).replace(tzinfo=None) - _SLACK
        hi = end.astimezone(tz).replace(tzinfo=None) + _SLACK
        ats = [_localise(n, tz) for n in _between(rule, lo, hi)]
        ats = [a for a in ats if start <= a < end]
    if item.until is not None:
        ats = [a for a in ats if a <= item.until]
    return [_make(item, a) for a in sorted(set(ats))]


def next_occurrence(item: ScheduleItem, tz: ZoneInfo, after: datetime) -> Occurrence | None:
    """The item's first occurrence strictly after `after` and within NEXT_HORIZON of it,
    or None (the series ended, or its next instance is further away than that)."""
    first = item.start.astimezone(tz)
    if item.rrule is None:
        candidate: datetime | None = first if first > after else None
    else:
        rule = _rule(_normalise(item.rrule, tz), first.replace(tzinfo=None))
        naive = after.astimezone(tz).replace(tzinfo=None) - _SLACK
        candidate = None
        for n in _between(rule, naive, naive + NEXT_HORIZON):
            at = _localise(n, tz)
            if at > after:
                candidate = at
                break
    if candidate is None or (item.until is not None and candidate > item.until):
        return None
    return _make(item, candidate)


def item_media(item: ScheduleItem) -> list[MediaRef]:
    """Every MediaRef an item needs: its audio `media`, or its slides' media."""
    refs = list(item.media)
    refs.extend(s.media for s in item.slides if s.media is not None)
    return refs


def upcoming_media(
    items: Iterable[ScheduleItem], tz: ZoneInfo, now: datetime, horizon: timedelta
) -> list[tuple[datetime, MediaRef]]:
    """Media needed by occurrences still to begin before `now + horizon`, soonest first.

    An occurrence whose window is still open counts (it may still play late). Each
    media (by sha256) appears once, at its earliest need, so the cache can fetch
    the most urgent first.
    """
    earliest: dict[str, tuple[datetime, MediaRef]] = {}
    for item in items:
        lookback = timedelta(seconds=item.window_s)
        for occ in occurrences(item, tz, now - lookback, now + horizon):
            if occ.window_end <= now:
                continue
            for ref in item_media(item):
                seen = earliest.get(ref.sha256)
                if seen is None or occ.at < seen[0]:
                    earliest[ref.sha256] = (occ.at, ref)
    return sorted(earliest.values(), key=lambda pair: (pair[0], pair[1].sha256))
