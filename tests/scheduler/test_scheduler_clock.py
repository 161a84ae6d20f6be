"""Wall-clock jumps, restarts from persisted state, and the untrusted-clock policy."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from support.scheduler import HCM, Sim, at, item

from agent.scheduler import PlanInputs, PlannerState, StartOccurrence, StartSource, plan


def hourly_day() -> tuple:  # type: ignore[type-arg]
    return (item("hourly", "2026-11-24 06:00", rrule="FREQ=HOURLY;BYHOUR=6,7,8,9,10,11,12"),)


def key(hhmm: str) -> str:
    h, m = (int(x) for x in hhmm.split(":"))
    return (
        f"hourly@2026-11-23T{h - 7 + 24:02d}:{m:02d}:00Z"
        if h < 7
        else (f"hourly@2026-11-24T{h - 7:02d}:{m:02d}:00Z")
    )


def test_forward_jump_skips_each_missed_occurrence_exactly_once() -> None:
    sim = Sim(hourly_day(), durations={"hourly": 120})
    sim.run(at("2026-11-24 05:50"), at("2026-11-24 06:30"))
    # NTP finds the clock 2 h slow: wall jumps 06:30 -> 08:30, monotonic does not move.
    sim.jump(at("2026-11-24 08:30"), 7200)
    sim.run(at("2026-11-24 08:30"), at("2026-11-24 10:30"))
    assert [(p.key, p.reason) for p in sim.proofs] == [
        (key("07:00"), "window_passed"),
        (key("08:00"), "window_passed"),
    ]
    assert sim.proofs[0].decided_at == at("2026-11-24 08:30")
    assert [e.key for e in sim.starts()] == [key("06:00"), key("09:00"), key("10:00")]


def test_forward_jump_into_a_window_still_plays_it_late() -> None:
    sim = Sim(hourly_day(), durations={"hourly": 120})
    sim.step(at("2026-11-24 06:50"))
    d = sim.jump(at("2026-11-24 07:03"), 780)
    assert isinstance(d.start, StartOccurrence) and d.start.key == key("07:00")
    assert d.proofs == ()


def test_forward_jump_past_an_emergency_window_still_plays_it_late() -> None:
    items = (
        item("drill", "2026-11-24 07:00", priority=95, window_s=300),
        item("normal", "2026-11-24 07:00", window_s=300, rrule="FREQ=DAILY"),
    )
    sim = Sim(items, durations={"drill": 60, "normal": 60})
    sim.step(at("2026-11-24 06:50"))
    sim.jump(at("2026-11-24 07:20"), 1800)  # clock was 30 min slow
    assert [(p.item_id, p.reason) for p in sim.proofs] == [("normal", "window_passed")]
    starts = sim.starts()
    assert [(e.key.split("@")[0], e.at) for e in starts] == [("drill", at("2026-11-24 07:20"))]
    # it keeps a window as long as promised (5 min) measured on lived time, no longer
    sim2 = Sim(items, durations={"drill": 60, "normal": 60})
    sim2.step(at("2026-11-24 06:50"))
    sim2.alert("storm", at("2026-11-24 06:50"))
    sim2.step(at("2026-11-24 06:50"))
    sim2.jump(at("2026-11-24 07:20"), 1800)
    d = sim2.step(at("2026-11-24 07:25"))  # still under the alert: the drill waits...
    assert d.wake_at == at("2026-11-24 07:35")
    d = sim2.step(at("2026-11-24 07:35"))  # ...until its restored window ends
    assert [(p.item_id, p.reason) for p in d.proofs] == [("drill", "window_passed")]
    # a jump while the clock was untrusted is the clock being set, not lost time
    sim3 = Sim(items, durations={"drill": 60, "normal": 60})
    sim3.step(at("2026-11-24 06:50"))
    sim3.trusted = False
    sim3.step(at("2026-11-24 06:50"))
    sim3.state.clock_jumped(1800)
    sim3.trusted = True
    sim3.step(at("2026-11-24 07:20"))
    assert sorted((p.item_id, p.reason) for p in sim3.proofs) == [
        ("drill", "clock_untrusted"),
        ("normal", "clock_untrusted"),
    ]


def test_backward_jump_replays_nothing() -> None:
    sim = Sim(hourly_day(), durations={"hourly": 120})
    sim.run(at("2026-11-24 05:50"), at("2026-11-24 09:10"))
    assert len(sim.starts()) == 4
    # The clock was 1 h 20 min fast: wall goes back 09:10 -> 07:50.
    sim.jump(at("2026-11-24 07:50"), -4800)
    sim.run(at("2026-11-24 07:50"), at("2026-11-24 12:30"))
    starts = Counter(e.key for e in sim.starts())
    assert max(starts.values()) == 1
    assert sorted(starts) == sorted(key(f"{h:02d}:00") for h in range(6, 13))
    assert sim.proofs == []


def test_backward_jump_during_a_programme_keeps_join_arithmetic() -> None:
    sim = Sim(
        (item("news", "2026-11-24 05:30"),), durations={"news": 1800}, source_durations={"s": 60}
    )
    sim.run(at("2026-11-24 05:29"), at("2026-11-24 05:40"))
    sim.jump(at("2026-11-24 05:30"), -600)  # 10 min played, clock corrected back 10 min
    sim.alert("s", at("2026-11-24 05:30"))
    sim.run(at("2026-11-24 05:30"), at("2026-11-24 05:35"))
    resumed = sim.starts("news@2026-11-23T22:30:00Z")[1]
    assert resumed.at == at("2026-11-24 05:31")
    assert resumed.offset_s == 660.0  # 10 min before the alert + 1 min of alert
    assert len(sim.of("finish")) == 1  # the alert; the news is still playing


def test_restart_mid_programme_from_persisted_json_joins_at_the_right_offset() -> None:
    items = (
        item("news", "2026-11-24 05:30"),
        item("early", "2026-11-24 05:00", rrule="FREQ=DAILY"),
    )
    sim = Sim(items, durations={"news": 1800, "early": 300})
    sim.run(at("2026-11-24 04:59"), at("2026-11-24 05:40"))
    saved = sim.state.to_json()
    json.loads(saved)  # plain JSON, storable in SQLite as text

    # Power cut at 05:40; the agent is back at 05:47 with a trusted clock (RTC).
    state = PlannerState.from_json(saved)
    assert state.to_json() == saved
    gone = state.after_restart()
    assert gone is not None and gone.key == "news@2026-11-23T22:30:00Z" and not gone.final
    assert gone.since == at("2026-11-24 05:30")
    sim2 = Sim(items, durations=sim.durations, state=state)
    sim2.run(at("2026-11-24 05:47"), at("2026-11-24 06:30"))
    starts = sim2.starts()
    assert [(e.key.split("@")[0], e.at, e.offset_s, e.resumed) for e in starts] == [
        ("news", at("2026-11-24 05:47"), 17 * 60.0, True)
    ]
    assert sim2.of("finish")[0].at == at("2026-11-24 06:00")
    assert sim2.proofs == []  # `early` played before the cut: not again, not skipped


def test_restart_with_drop_item_does_not_play_it_again() -> None:
    sim = Sim((item("spot", "2026-11-24 05:30", resume="drop"),), durations={"spot": 120})
    sim.step(at("2026-11-24 05:30"))
    state = PlannerState.from_json(sim.state.to_json())
    gone = state.after_restart()
    assert gone is not None and gone.final
    assert state.ledger["spot@2026-11-23T22:30:00Z"].reason == "agent_restart"
    assert plan(at("2026-11-24 05:31"), sim.inputs(), state).start is None


def test_json_round_trip_keeps_everything_durable() -> None:
    sim = Sim(hourly_day(), durations={"hourly": 600}, source_durations={"s": 60})
    sim.run(at("2026-11-24 05:59"), at("2026-11-24 06:02"))
    sim.alert("s", at("2026-11-24 06:02"))
    sim.run(at("2026-11-24 06:02"), at("2026-11-24 06:02:30"))
    sim.trusted = False
    sim.step(at("2026-11-24 06:02:40"))
    state = PlannerState.from_json(sim.state.to_json())
    assert state.ledger == sim.state.ledger
    assert state.tracks == sim.state.tracks
    assert state.playing == sim.state.playing
    assert state.high_water == sim.state.high_water
    assert state.untrusted_spell is True
    assert state.offered is None  # volatile by design


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"v": 99}', "version"),
        (
            '{"v":1,"ledger":{"k":["won",null,"2026-11-24T05:30:00+07:00"]},"tracks":[],'
            '"untrusted_spell":false}',
            "ledger",
        ),
        (
            '{"v":1,"ledger":{"k":["completed",null,"2026-11-24T05:30:00"]},"tracks":[],'
            '"untrusted_spell":false}',
            "no UTC offset",
        ),
        ('{"v":1,"ledger":{},"tracks":[{"key":"k"}],"untrusted_spell":false}', "resume"),
        (
            '{"v":1,"ledger":{},"tracks":[],"untrusted_spell":"no","jumped_spans":[]}',
            "untrusted_spell",
        ),
        (
            '{"v":1,"ledger":{},"tracks":[],"untrusted_spell":false,"jumped_spans":[],'
            '"pending_jump_s":-5}',
            "pending_jump_s",
        ),
    ],
)
def test_corrupt_state_is_refused_with_a_clear_error(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        PlannerState.from_json(text)


def test_ledger_is_pruned_after_three_days() -> None:
    sim = Sim(hourly_day(), durations={"hourly": 60})
    sim.run(at("2026-11-24 05:59"), at("2026-11-24 06:05"))
    assert len(sim.state.ledger) == 1
    first = key("06:00")
    sim.step(at("2026-11-27 06:00"))  # off for 3 days: the missed ones are skipped...
    assert len(sim.proofs) == 20
    assert first in sim.state.ledger
    sim.step(at("2026-11-27 06:02"))  # ...and 06:01 on the 24th + 3 days has passed
    assert first not in sim.state.ledger
    assert len(sim.state.ledger) == 20
    assert len(sim.proofs) == 20  # forgetting it did not make it look undecided


# ---- untrusted clock ----------------------------------------------------------------------


def test_untrusted_clock_holds_schedule_but_plays_alerts() -> None:
    sim = Sim(hourly_day(), durations={"hourly": 60})
    sim.trusted = False
    d = sim.step(at("2026-11-24 06:00"))
    assert d.start is None and d.proofs == () and d.wake_at is None
    sim.alert("storm", at("2026-11-24 06:00"))
    d = sim.step(at("2026-11-24 06:00:01"))
    assert isinstance(d.start, StartSource) and d.start.key == "alert:storm"


def test_window_passed_while_untrusted_is_skipped_for_that_reason_once_trusted() -> None:
    sim = Sim(hourly_day(), durations={"hourly": 60})
    sim.run(at("2026-11-24 05:50"), at("2026-11-24 06:30"))  # 06:00 played
    sim.trusted = False
    for t in ("2026-11-24 06:40", "2026-11-24 07:02", "2026-11-24 07:30"):
        assert sim.step(at(t)).start is None
    sim.trusted = True
    d = sim.step(at("2026-11-24 08:02"))
    assert [(p.key, p.reason) for p in d.proofs] == [(key("07:00"), "clock_untrusted")]
    assert isinstance(d.start, StartOccurrence) and d.start.key == key("08:00")


def test_occurrences_missed_before_the_untrusted_spell_are_window_passed() -> None:
    # Off from 06:30 to 09:00 (power cut), then untrusted until 10:02.
    sim = Sim(hourly_day(), durations={"hourly": 60})
    sim.run(at("2026-11-24 05:50"), at("2026-11-24 06:30"))
    state = PlannerState.from_json(sim.state.to_json())
    state.after_restart()
    sim2 = Sim(hourly_day(), durations={"hourly": 60}, state=state, trusted=False)
    sim2.step(at("2026-11-20 12:00"))  # fake-hwclock's stale time: nothing happens
    assert sim2.proofs == [] and sim2.starts() == []
    sim2.trusted = True
    sim2.untrusted_since = at("2026-11-24 09:00")  # runner: trusted now minus monotonic uptime
    sim2.step(at("2026-11-24 10:02"))
    assert [(p.key, p.reason) for p in sim2.proofs] == [
        (key("07:00"), "window_passed"),
        (key("08:00"), "window_passed"),
        (key("09:00"), "clock_untrusted"),
    ]
    assert [e.key for e in sim2.starts()] == [key("10:00")]


def test_what_plays_continues_when_the_clock_becomes_untrusted() -> None:
    sim = Sim(hourly_day(), durations={"hourly": 600})
    sim.step(at("2026-11-24 06:00"))
    sim.trusted = False
    d = sim.step(at("2026-11-24 06:01"))
    assert d.stop is None and sim.state.playing is not None


def test_planning_is_deterministic_for_the_same_inputs() -> None:
    items = hourly_day()
    a, b = PlannerState(), PlannerState()
    for t in ("2026-11-24 05:00", "2026-11-24 06:00", "2026-11-24 09:00"):
        da = plan(at(t), PlanInputs(items, HCM), a)
        db = plan(at(t), PlanInputs(items, HCM), b)
        assert da == db
    assert a.to_json() == b.to_json()
