"""The planner's decisions: priorities, pre-emption and resume modes, FIFO within a
window, quiet hours, schedule changes, failures, wake-up instants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.scheduler import HCM, Sim, at, item

from agent.scheduler import (
    PlanInputs,
    PlannerState,
    StartOccurrence,
    StartSource,
    parse_quiet_hours,
    plan,
)

NIGHT = parse_quiet_hours("22:00-05:00")
NEWS = "news@2026-11-23T22:30:00Z"  # 05:30 local on 24 November


def _storm_during(sim: Sim, storm_s: float, start: str, alert: str, end: str) -> None:
    """Run `sim` from `start`, sound alert "storm" (`storm_s` long) at `alert`, run on to
    `end`; times of day in HCM on 24 November."""
    sim.source_durations = {"storm": storm_s}
    sim.run(at(f"2026-11-24 {start}"), at(f"2026-11-24 {alert}"))
    sim.alert("storm", at(f"2026-11-24 {alert}"))
    sim.run(at(f"2026-11-24 {alert}"), at(f"2026-11-24 {end}"))


def test_on_time_item_plays_once_then_completed_and_never_again() -> None:
    sim = Sim((item("news", "2026-11-24 05:30"),), durations={"news": 600})
    sim.run(at("2026-11-24 05:00"), at("2026-11-24 07:00"))
    assert [(e.what, e.key, e.at) for e in sim.events] == [
        ("start", NEWS, at("2026-11-24 05:30")),
        ("finish", NEWS, at("2026-11-24 05:40")),
    ]
    assert sim.of("finish")[0].outcome == "completed"
    assert sim.state.ledger[NEWS].outcome == "completed"
    assert sim.proofs == []


def test_decision_wakes_at_the_next_occurrence() -> None:
    items = (item("news", "2026-11-24 05:30", rrule="FREQ=DAILY"), item("b", "2026-11-24 06:10"))
    d = plan(at("2026-11-24 05:00"), PlanInputs(items, HCM), PlannerState())
    assert d.start is None and d.stop is None and d.proofs == ()
    assert d.wake_at == at("2026-11-24 05:30")


def test_late_within_window_plays_from_the_top() -> None:
    sim = Sim((item("news", "2026-11-24 05:30"),), durations={"news": 600})
    d = sim.step(at("2026-11-24 05:34:59"))
    assert isinstance(d.start, StartOccurrence) and d.start.offset_s == 0.0
    assert not d.start.resumed


def test_window_passed_is_skipped_once_with_a_proof() -> None:
    sim = Sim((item("news", "2026-11-24 05:30"),))
    sim.step(at("2026-11-24 05:29"))  # planned before: it is in the history to decide
    d = sim.step(at("2026-11-24 05:35"))  # window end: no longer allowed to begin
    assert d.start is None
    assert [(p.key, p.reason, p.scheduled_at) for p in d.proofs] == [
        (NEWS, "window_passed", at("2026-11-24 05:30"))
    ]
    assert d.proofs[0].proof_id == NEWS + "#skipped"
    assert sim.step(at("2026-11-24 05:36")).proofs == ()


def test_first_plan_ever_does_not_report_history() -> None:
    sim = Sim((item("news", "2026-11-20 05:30", rrule="FREQ=DAILY"),))
    d = sim.step(at("2026-11-24 12:00"))
    assert d.proofs == () and d.start is None


# ---- priorities and pre-emption ----------------------------------------------------


def test_alert_preempts_and_join_rejoins_where_the_clock_says() -> None:
    sim = Sim((item("news", "2026-11-24 05:30", resume="join"),), durations={"news": 1800})
    _storm_during(sim, 120, "05:29", "05:40", "06:30")
    assert [(e.what, e.key, e.at, e.offset_s, e.outcome) for e in sim.events] == [
        ("start", NEWS, at("2026-11-24 05:30"), 0.0, None),
        ("stop", NEWS, at("2026-11-24 05:40"), None, "preempted"),
        ("start", "alert:storm", at("2026-11-24 05:40"), 0.0, None),
        ("finish", "alert:storm", at("2026-11-24 05:42"), None, "completed"),
        # 12 minutes into the programme, as if it had never stopped
        ("start", NEWS, at("2026-11-24 05:42"), 720.0, None),
        ("finish", NEWS, at("2026-11-24 06:00"), None, "resumed"),
    ]
    assert sim.starts(NEWS)[1].resumed
    assert sim.state.ledger[NEWS].outcome == "resumed"


def test_join_offset_counts_from_a_late_start() -> None:
    # Started 2 min late (waited its turn): the programme's timeline runs from then.
    sim = Sim(
        (item("first", "2026-11-24 05:28"), item("news", "2026-11-24 05:30")),
        durations={"first": 240, "news": 1800},
    )
    sim.run(at("2026-11-24 05:27"), at("2026-11-24 05:33"))
    assert sim.starts(NEWS)[0].at == at("2026-11-24 05:32")
    sim.alert("storm", at("2026-11-24 05:33"))
    sim.run(at("2026-11-24 05:33"), at("2026-11-24 05:35"))
    sim.alert_stop("alert:storm", at("2026-11-24 05:35"))
    sim.step(at("2026-11-24 05:35"))
    assert sim.starts(NEWS)[1].offset_s == 180.0


def test_restart_plays_again_from_the_top_within_its_window() -> None:
    sim = Sim((item("spot", "2026-11-24 05:30", resume="restart"),), durations={"spot": 60})
    key = "spot@2026-11-23T22:30:00Z"
    _storm_during(sim, 30, "05:29", "05:30:20", "05:40")
    starts = sim.starts(key)
    assert [(s.at, s.offset_s, s.resumed) for s in starts] == [
        (at("2026-11-24 05:30"), 0.0, False),
        (at("2026-11-24 05:30:50"), 0.0, True),
    ]
    assert sim.state.ledger[key].outcome == "resumed"


def test_restart_never_begins_after_its_window() -> None:
    sim = Sim((item("spot", "2026-11-24 05:30", resume="restart"),), durations={"spot": 60})
    key = "spot@2026-11-23T22:30:00Z"
    _storm_during(sim, 600, "05:29", "05:30:20", "05:50")
    assert len(sim.starts(key)) == 1
    assert sim.state.ledger[key].outcome == "preempted"
    assert sim.proofs == []  # the pre-empted segment's proof is the last word
    assert key not in sim.state.tracks


def test_drop_is_not_played_again() -> None:
    sim = Sim((item("spot", "2026-11-24 05:30", resume="drop"),), durations={"spot": 60})
    key = "spot@2026-11-23T22:30:00Z"
    _storm_during(sim, 5, "05:29", "05:30:20", "05:40")
    assert len(sim.starts(key)) == 1
    assert sim.of("stop")[0].outcome == "preempted"
    assert sim.state.ledger[key].outcome == "preempted"


def test_join_with_nothing_left_does_not_resume() -> None:
    sim = Sim((item("news", "2026-11-24 05:30"),), durations={"news": 600})
    _storm_during(sim, 900, "05:29", "05:35", "06:00")
    assert len(sim.starts(NEWS)) == 1
    assert sim.state.ledger[NEWS].outcome == "preempted"


def test_join_of_unknown_length_resumes_only_within_window() -> None:
    sim = Sim((item("news", "2026-11-24 05:30"),))  # duration unknown
    sim.run(at("2026-11-24 05:29"), at("2026-11-24 05:31"))
    sim.alert("storm", at("2026-11-24 05:31"))
    sim.step(at("2026-11-24 05:31"))
    sim.alert_stop("alert:storm", at("2026-11-24 05:33"))
    d = sim.step(at("2026-11-24 05:33"))
    assert isinstance(d.start, StartOccurrence) and d.start.offset_s == 180.0
    # same again, but the alert outlasts the window
    sim2 = Sim((item("news", "2026-11-24 05:30"),))
    sim2.run(at("2026-11-24 05:29"), at("2026-11-24 05:31"))
    sim2.alert("storm", at("2026-11-24 05:31"))
    sim2.step(at("2026-11-24 05:31"))
    sim2.alert_stop("alert:storm", at("2026-11-24 05:36"))
    assert sim2.step(at("2026-11-24 05:36")).start is None
    assert sim2.state.ledger[NEWS].outcome == "preempted"


def test_higher_scheduled_priority_preempts_and_equal_waits() -> None:
    items = (
        item("low", "2026-11-24 05:30", priority=20),
        item("same", "2026-11-24 05:31", priority=20, window_s=600),
        item("prio", "2026-11-24 05:32", priority=60),
    )
    sim = Sim(items, durations={"low": 300, "same": 60, "prio": 60})
    sim.run(at("2026-11-24 05:29"), at("2026-11-24 05:50"))
    seq = [(e.what, e.key.split("@")[0], e.at.strftime("%H:%M")) for e in sim.events]
    assert seq == [
        ("start", "low", "05:30"),
        ("stop", "low", "05:32"),  # priority band pre-empts at once
        ("start", "prio", "05:32"),
        ("finish", "prio", "05:33"),
        ("start", "low", "05:33"),  # first come: `low` resumes before `same`
        ("finish", "low", "05:35"),
        ("start", "same", "05:35"),  # waited within its window
        ("finish", "same", "05:36"),
    ]


def test_equal_priority_waiting_past_its_window_is_skipped() -> None:
    items = (item("long", "2026-11-24 05:30"), item("next", "2026-11-24 05:31"))
    sim = Sim(items, durations={"long": 900, "next": 60})
    sim.run(at("2026-11-24 05:29"), at("2026-11-24 06:00"))
    assert len(sim.starts("next@2026-11-23T22:31:00Z")) == 0
    assert [(p.key, p.reason, p.decided_at) for p in sim.proofs] == [
        ("next@2026-11-23T22:31:00Z", "window_passed", at("2026-11-24 05:36"))
    ]


def test_equal_priority_first_come_by_schedule_order() -> None:
    items = (item("b", "2026-11-24 05:31"), item("a", "2026-11-24 05:30"))
    inputs = PlanInputs(items, HCM)
    d = plan(at("2026-11-24 05:32"), inputs, PlannerState())
    assert isinstance(d.start, StartOccurrence) and d.start.item_id == "a"
    assert d.wake_at == at("2026-11-24 05:36")  # b's window end, unless a finishes first


def test_alerts_order_by_priority_then_arrival_and_live_by_its_priority() -> None:
    sim = Sim((item("news", "2026-11-24 05:30", priority=70),))
    sim.alert("radio", at("2026-11-24 05:00"), priority=60, kind="live")
    d = sim.step(at("2026-11-24 05:29"))
    assert isinstance(d.start, StartSource) and d.start.key == "live:radio"
    d = sim.step(at("2026-11-24 05:30"))  # 70 > live's 60
    assert d.stop is not None and d.stop.key == "live:radio"
    assert isinstance(d.start, StartOccurrence)
    sim.alert("b", at("2026-11-24 05:31:02"), priority=95)
    sim.alert("a", at("2026-11-24 05:31:01"), priority=95)
    d = sim.step(at("2026-11-24 05:31:05"))
    assert isinstance(d.start, StartSource) and d.start.id == "a"
    sim.alert("c", at("2026-11-24 05:31:06"), priority=95)
    assert sim.step(at("2026-11-24 05:31:07")).start is None  # equal: `a` keeps playing


def test_alert_removed_from_active_is_stopped_as_cancelled() -> None:
    sim = Sim(())
    sim.alert("storm", at("2026-11-24 05:00"))
    sim.step(at("2026-11-24 05:00"))
    sim.active.clear()
    d = sim.step(at("2026-11-24 05:01"))
    assert d.stop is not None and (d.stop.key, d.stop.outcome) == ("alert:storm", "cancelled")
    assert sim.state.playing is None


# ---- quiet hours ---------------------------------------------------------------------


def test_quiet_hours_skip_normal_and_priority_but_not_emergency() -> None:
    items = (
        item("late", "2026-11-24 22:00"),  # start included
        item("prio", "2026-11-24 23:00", priority=89),
        item("drill", "2026-11-25 01:00", priority=90),
        item("dawn", "2026-11-25 05:00"),  # end excluded
    )
    sim = Sim(items, quiet=NIGHT, durations={i.id: 60 for i in items})
    sim.run(at("2026-11-24 21:00"), at("2026-11-25 06:00"))
    assert [(p.item_id, p.reason, p.decided_at) for p in sim.proofs] == [
        ("late", "quiet_hours", at("2026-11-24 22:00")),
        ("prio", "quiet_hours", at("2026-11-24 23:00")),
    ]
    assert [e.key.split("@")[0] for e in sim.starts()] == ["drill", "dawn"]


def test_item_playing_when_quiet_hours_begin_is_cut() -> None:
    sim = Sim((item("film", "2026-11-24 21:59"),), quiet=NIGHT)  # length unknown
    d = sim.step(at("2026-11-24 21:59"))
    assert isinstance(d.start, StartOccurrence)
    assert d.wake_at == at("2026-11-24 22:00")
    d = sim.step(at("2026-11-24 22:00"))
    assert d.stop is not None and (d.stop.outcome, d.stop.reason) == ("preempted", "quiet_hours")
    assert sim.step(at("2026-11-24 22:01")).start is None
    assert sim.state.ledger["film@2026-11-24T14:59:00Z"].outcome == "preempted"


def test_known_length_reaching_into_quiet_hours_is_skipped() -> None:
    sim = Sim((item("film", "2026-11-24 21:50"),), quiet=NIGHT, durations={"film": 1200})
    d = sim.step(at("2026-11-24 21:50"))
    assert d.start is None and [p.reason for p in d.proofs] == ["quiet_hours"]


def test_quiet_hours_never_silence_alerts_or_live() -> None:
    sim = Sim((), quiet=NIGHT)
    sim.alert("storm", at("2026-11-24 23:00"))
    sim.alert("council", at("2026-11-24 23:00"), priority=60, kind="live")
    d = sim.step(at("2026-11-24 23:00"))
    assert isinstance(d.start, StartSource) and d.start.key == "alert:storm"
    sim.alert_stop("alert:storm", at("2026-11-24 23:05"))
    d = sim.step(at("2026-11-24 23:05"))
    assert isinstance(d.start, StartSource) and d.start.key == "live:council"


def test_emergency_item_plays_through_quiet_hours() -> None:
    sim = Sim((item("drill", "2026-11-24 21:59", priority=95),), quiet=NIGHT)
    sim.step(at("2026-11-24 21:59"))
    d = sim.step(at("2026-11-24 22:00"))
    assert d.stop is None and sim.state.playing is not None


# ---- schedule changes and failures ------------------------------------------------------


def test_item_removed_by_a_new_schedule_is_cancelled() -> None:
    sim = Sim((item("news", "2026-11-24 05:30"),), durations={"news": 600})
    sim.step(at("2026-11-24 05:30"))
    sim.items = (item("other", "2026-11-24 07:00"),)
    d = sim.step(at("2026-11-24 05:31"))
    assert d.stop is not None and (d.stop.key, d.stop.outcome) == (NEWS, "cancelled")
    assert sim.state.ledger[NEWS].outcome == "cancelled"


def test_failed_start_is_final_and_not_retried() -> None:
    state = PlannerState()
    inputs = PlanInputs((item("news", "2026-11-24 05:30"),), HCM)
    d = plan(at("2026-11-24 05:30"), inputs, state)
    assert d.start is not None
    assert state.failed(d.start.key, at("2026-11-24 05:30"), "media_missing") == "failed"
    assert state.ledger[NEWS].reason == "media_missing"
    assert plan(at("2026-11-24 05:31"), inputs, state).start is None


def test_events_for_something_not_playing_fail_loudly() -> None:
    state = PlannerState()
    with pytest.raises(ValueError, match="did not offer"):
        state.started("news@x", at("2026-11-24 05:30"))
    with pytest.raises(ValueError, match="not playing"):
        state.finished("news@x", at("2026-11-24 05:30"))
    with pytest.raises(ValueError, match="aware"):
        plan(at("2026-11-24 05:30").replace(tzinfo=None), PlanInputs((), HCM), state)


def test_wake_at_is_the_earliest_of_next_occurrence_and_waiting_deadline() -> None:
    items = (
        item("a", "2026-11-24 05:30"),
        item("b", "2026-11-24 05:31"),
        item("c", "2026-11-24 06:00"),
    )
    state = PlannerState()
    inputs = PlanInputs(items, HCM, durations={"a": 3600})
    d = plan(at("2026-11-24 05:30"), inputs, state)
    assert d.wake_at == at("2026-11-24 05:31")
    assert d.start is not None
    state.started(d.start.key, at("2026-11-24 05:30"))
    d = plan(at("2026-11-24 05:31"), inputs, state)
    assert d.start is None and d.wake_at == at("2026-11-24 05:36")  # b gives up then
    d = plan(at("2026-11-24 05:36"), inputs, state)
    assert [p.item_id for p in d.proofs] == ["b"] and d.wake_at == at("2026-11-24 06:00")
    assert timedelta(0) < d.wake_at - at("2026-11-24 05:36")
