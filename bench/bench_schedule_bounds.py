"""Worst-case work of one schedule item the validator accepts (issue 7): the CPU time of
plan() and of the media look-ahead for the costliest rules we know of, and the rule
instances / candidate periods evaluated (the deterministic bound the tests assert).

Run: .venv/bin/python bench/bench_schedule_bounds.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.commands import validate_args
from agent.model import ScheduleSet
from agent.scheduler import PlanInputs, PlannerState, parse_quiet_hours, plan, upcoming_media
from agent.scheduler.occurrences import EvalCounter

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
MEDIA = {"url": "https://m.example.vn/a.mp3", "sha256": "a" * 64, "size": 10, "type": "audio/mpeg"}
YEAR_AGO = (NOW - timedelta(days=365)).isoformat()
# The rules that cost most per call, found by the property test and by reading dateutil.
WORST = [
    ("FREQ=MINUTELY", YEAR_AGO, 86400),
    ("FREQ=MINUTELY;BYHOUR=0;BYYEARDAY=166;BYWEEKNO=33", "2018-09-14T15:00:00+07:00", 3600),
    ("FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30", YEAR_AGO, 86400),
    ("FREQ=DAILY;COUNT=2000;BYMONTH=2;BYMONTHDAY=29", "2000-01-01T00:00:00+07:00", 86400),
    ("FREQ=YEARLY;COUNT=2000;BYMONTH=6;BYWEEKNO=1", "2000-01-01T00:00:00+07:00", 86400),
    ("FREQ=WEEKLY;BYSETPOS=9;BYDAY=MO", "2000-01-01T00:00:00+07:00", 86400),
    ("FREQ=MINUTELY;BYMINUTE=0", "2000-01-01T00:00:00+07:00", 0),
]


def measure(fn: Callable[[], object]) -> tuple[float, int, int]:
    ev, ex = EvalCounter.evaluated, EvalCounter.examined
    t0 = time.process_time()
    fn()
    return time.process_time() - t0, EvalCounter.evaluated - ev, EvalCounter.examined - ex


def main() -> None:
    worst = 0.0
    for rule, start, window in WORST:
        args = validate_args("schedule.set", {"version": 1, "items": [
            {"id": "x", "kind": "audio", "media": [MEDIA], "start": start, "rrule": rule,
             "window_s": window}]})  # fmt: skip
        assert isinstance(args, ScheduleSet)
        items = args.items
        inputs = PlanInputs(items, HCM, quiet=parse_quiet_hours("22:00-05:00"))
        state = PlannerState()
        for name, fn in (
            ("plan (cold)", lambda i=inputs, s=state: plan(NOW, i, s)),
            ("plan", lambda i=inputs, s=state: plan(NOW + timedelta(seconds=30), i, s)),
            ("look-ahead 48 h",
             lambda it=items: upcoming_media(it, HCM, NOW, timedelta(hours=48))),
            ("look-ahead 31 d",
             lambda it=items: upcoming_media(it, HCM, NOW, timedelta(days=31))),
        ):
            cpu, evaluated, examined = measure(fn)
            worst = max(worst, cpu)
            print(f"{rule[:48]:48} {name:16} {cpu * 1e3:6.1f} ms CPU "
                  f"{evaluated:5d} instances {examined:5d} periods")
    print(f"worst: {worst * 1e3:.1f} ms CPU per call (budget 50 ms)")


if __name__ == "__main__":
    main()
