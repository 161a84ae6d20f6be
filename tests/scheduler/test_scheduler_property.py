"""Property: whatever sequence of clock readings (forward and backward jumps, trust
lost and regained, restarts from persisted state, alerts coming and going) is fed,
no occurrence is ever started twice afresh, nothing decided is played again, every
skip proof is emitted once, and an emergency is never left silent."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.scheduler import Sim, at, item

from agent.scheduler import PlannerState, parse_quiet_hours

ITEMS = (
    item("news", "2026-11-24 05:30", rrule="FREQ=DAILY", resume="join"),
    item("spot", "2026-11-24 05:32", rrule="FREQ=HOURLY", resume="restart", window_s=120),
    item("ad", "2026-11-24 05:45", rrule="FREQ=MINUTELY;INTERVAL=20", resume="drop", window_s=60),
    item("prio", "2026-11-24 06:10", rrule="FREQ=HOURLY", priority=60),
    item("drill", "2026-11-24 05:50", rrule="FREQ=HOURLY", priority=95, window_s=600),
    item("late", "2026-11-24 21:55", rrule="FREQ=DAILY"),
)
DURATIONS = {"news": 900.0, "spot": 45.0, "ad": 30.0, "prio": 120.0, "drill": 60.0}

step = st.one_of(
    st.tuples(st.just("tick"), st.integers(1, 900)),  # wall and monotonic advance together
    st.tuples(st.just("jump"), st.integers(-7200, 7200)),  # wall steps alone
    st.tuples(st.just("trust"), st.booleans()),
    st.tuples(st.just("alert"), st.integers(0, 2)),  # start / stop alert (priority 100)
    st.tuples(st.just("restart"), st.just(0)),  # agent restarts from persisted JSON
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40), st.integers(0, 20 * 3600))
def test_no_occurrence_is_started_twice_whatever_the_clock_does(
    steps: list[tuple[str, int]], offset_s: int
) -> None:
    sim = Sim(ITEMS, durations=DURATIONS, quiet=parse_quiet_hours("22:00-05:00"))
    sim.source_durations = {"a0": 40.0, "a1": 300.0}
    now = at("2026-11-24 05:00") + timedelta(seconds=offset_s)
    sim.step(now)
    n_alerts = 0
    for what, value in steps:
        if what == "tick":
            sim.run(now, now + timedelta(seconds=value))
            now += timedelta(seconds=value)
        elif what == "jump":
            now += timedelta(seconds=value)
            sim.jump(now, value)
        elif what == "trust":
            sim.trusted = bool(value)
            sim.step(now)
        elif what == "alert":
            if value < 2:
                sim.alert(f"a{n_alerts % 2}", now)
                n_alerts += 1
            elif sim.active:
                sim.alert_stop(sim.active[0].key, now)
            sim.step(now)
        else:
            sim.state = PlannerState.from_json(sim.state.to_json())
            sim.state.after_restart()
            sim.ends_at_mono = None
            sim.step(now)
        check(sim)


def check(sim: Sim) -> None:
    fresh = Counter(
        e.key for e in sim.events if e.what == "start" and "@" in e.key and not e.resumed
    )
    assert all(n == 1 for n in fresh.values()), fresh
    skipped = Counter(p.key for p in sim.proofs)
    assert all(n == 1 for n in skipped.values()), skipped
    assert not set(skipped) & set(fresh), "an occurrence both skipped and played"
    # Once decided (in the ledger), a key never starts again.
    decided_at_index: dict[str, int] = {}
    for i, e in enumerate(sim.events):
        if e.what in ("finish", "skip") and "@" in e.key:
            decided_at_index.setdefault(e.key, i)
        if e.what == "start" and e.key in decided_at_index:
            raise AssertionError(f"{e.key} started again after it was decided")
    # A resumed start always follows a pre-emption (or restart) of that occurrence.
    for e in sim.events:
        if e.what == "start" and e.resumed:
            assert e.key in fresh or e.key in sim.state.ledger or e.key in sim.state.tracks
    # An active alert is never left silent: something of its priority plays.
    d = sim.last_decision
    if sim.active and d is not None:
        playing = sim.state.playing
        assert playing is not None and playing.priority >= 100


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3 * 3600, 3 * 3600), min_size=1, max_size=25))
def test_emergency_occurrence_is_never_lost_to_clock_jumps(jumps: list[int]) -> None:
    # Forward and backward jumps (with the clock trusted) around an emergency drill:
    # it plays exactly once, even when a jump carried the wall clock past its window.
    drill = item("drill", "2026-11-24 06:00", priority=95, window_s=600)
    sim = Sim((drill,), durations={"drill": 60.0}, quiet=parse_quiet_hours("05:00-07:00"))
    now = at("2026-11-24 05:00")
    sim.step(now)
    for j in jumps:
        sim.run(now, now + timedelta(seconds=300))
        now += timedelta(seconds=300 + j)
        sim.jump(now, j)
    sim.run(now, max(now, at("2026-11-24 06:20")) + timedelta(seconds=600))
    k = "drill@2026-11-23T23:00:00Z"
    started = [e for e in sim.starts(k) if not e.resumed]
    skipped = [p for p in sim.proofs if p.key == k]
    assert skipped == []
    assert len(started) == 1
    assert sim.state.ledger[k].outcome == "completed"


def test_property_helper_detects_a_double_start() -> None:
    # The checker itself must be able to fail.
    sim = Sim(ITEMS, durations=DURATIONS)
    sim.step(at("2026-11-24 05:30"))
    sim.events.append(sim.events[0])
    try:
        check(sim)
    except AssertionError:
        return
    raise AssertionError("check() accepted a double start")
