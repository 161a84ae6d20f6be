"""plan() cost for a 200-item schedule (the runner calls it on every wake-up and event).

Run: .venv/bin/python bench/bench_scheduler_plan.py
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.model import ScheduleItem
from agent.scheduler import PlanInputs, PlannerState, parse_quiet_hours, plan

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
RULES = ("FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,WE,FR", "FREQ=HOURLY;BYHOUR=6,9,12,15,18", None)


def schedule(n: int) -> tuple[ScheduleItem, ...]:
    base = datetime(2026, 11, 1, 5, 0, tzinfo=HCM)
    return tuple(
        ScheduleItem(
            id=f"item-{i:03d}",
            kind="audio",
            start=base + timedelta(minutes=7 * i),
            rrule=RULES[i % len(RULES)],
            priority=(20, 60, 95)[i % 3],
            resume=("join", "restart", "drop")[i % 3],
        )
        for i in range(n)
    )


def main() -> None:
    items = schedule(200)
    inputs = PlanInputs(items, HCM, quiet=parse_quiet_hours("22:00-05:00"))
    state = PlannerState()
    now = datetime(2026, 11, 23, 4, 0, tzinfo=HCM)
    plan(now, inputs, state)  # warm the rule cache, as a running agent has
    n = 500
    t0 = time.perf_counter()
    for i in range(n):
        d = plan(now + timedelta(seconds=30 * i), inputs, state)
        if d.start is not None:
            state.started(d.start.key, now + timedelta(seconds=30 * i))
            state.finished(d.start.key, now + timedelta(seconds=30 * i))
    steady = (time.perf_counter() - t0) / n
    # After 2 days off: the first plan finds and skips the whole backlog.
    t0 = time.perf_counter()
    d = plan(now + timedelta(days=2), inputs, state)
    backlog = time.perf_counter() - t0
    t0 = time.perf_counter()
    state_json = state.to_json()
    PlannerState.from_json(state_json)
    json_s = time.perf_counter() - t0
    print(f"items: {len(items)}")
    print(f"plan() steady state: {steady * 1e3:.2f} ms per call (mean of {n})")
    print(f"plan() after 2 days off: {backlog * 1e3:.1f} ms, {len(d.proofs)} skip proofs")
    print(f"state JSON: {len(state_json)} bytes, to_json+from_json {json_s * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
