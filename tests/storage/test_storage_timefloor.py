"""The durable time floor (agent/timefloor.py) on a real state.db, and the clock's use of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.clock import clock_status
from agent.db import open_db
from agent.state import StateStore
from agent.timefloor import (
    FLOOR_KEY,
    OLD_LOWER_BOUND_KEY,
    RECORD_EVERY_S,
    UNTRUSTED_STEP_S,
    TimeFloor,
)

NOW = 1_795_000_000.0


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    return StateStore(open_db(tmp_path / "state.db"))


def test_accepted_iat_raises_it_within_trusted_now_and_exp(state: StateStore) -> None:
    floor = TimeFloor(state)
    assert floor.after_accept(int(NOW), int(NOW) + 300, trusted_now=NOW)
    assert floor.value() == NOW
    # A key may sign any iat: never beyond trusted now + 30 s, never beyond exp.
    assert floor.after_accept(2**53, 2**53, trusted_now=NOW + 10)
    assert floor.value() == NOW + 40
    assert not floor.after_accept(2**53, int(NOW) + 20, trusted_now=NOW + 10)
    floor.persist()
    assert TimeFloor(state).value() == NOW + 40


def test_untrusted_raises_are_bounded_by_elapsed_time(state: StateStore) -> None:
    state.set(FLOOR_KEY, NOW)
    mono = Mono()
    floor = TimeFloor(state, mono=mono)
    floor.after_accept(2**53, 2**53, trusted_now=None)
    assert floor.value() == NOW + UNTRUSTED_STEP_S
    mono.t += 3600
    floor.after_accept(2**53, 2**53, trusted_now=None)
    assert floor.value() == NOW + UNTRUSTED_STEP_S + 3600


def test_trusted_wall_time_is_written_at_most_once_a_minute(state: StateStore) -> None:
    mono = Mono()
    floor = TimeFloor(state, mono=mono)
    assert floor.trusted_wall(NOW)
    assert not floor.trusted_wall(NOW + 5)  # kept in memory, not written yet
    assert floor.value() == NOW + 5
    mono.t += RECORD_EVERY_S
    assert floor.trusted_wall(NOW + 61)
    assert not floor.trusted_wall(NOW)  # never down


def test_garbage_and_the_old_poisoned_bound_are_not_carried_over(state: StateStore) -> None:
    state.set(OLD_LOWER_BOUND_KEY, 2**53)
    state.set(FLOOR_KEY, "soon")
    floor = TimeFloor(state)
    assert floor.value() == 0.0
    floor.drop_old_bound()
    assert state.get(OLD_LOWER_BOUND_KEY) is None


def test_lowering_is_durable(state: StateStore) -> None:
    floor = TimeFloor(state)
    floor.after_accept(int(NOW) + 86400 * 365, int(NOW) + 86400 * 366, trusted_now=None)
    floor.lower_to(NOW)
    assert TimeFloor(state).value() == NOW


def test_a_wall_clock_below_the_floor_is_not_trusted() -> None:
    assert clock_status("always", lower_bound=NOW, wall=NOW - 3600).trusted is False
    assert clock_status("always", lower_bound=NOW, wall=NOW - 10).trusted is True  # leeway
    assert clock_status("always", lower_bound=NOW, wall=NOW + 1).trusted is True
    assert clock_status("never", lower_bound=0, wall=NOW).source == "none"
