"""Key/value state: JSON values, durable, set_many all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.db import open_db
from agent.state import StateStore


def test_values_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    schedule = {"version": 42, "items": [{"id": "morning-news", "title": "Bản tin sáng"}]}
    with open_db(path) as db:
        state = StateStore(db)
        assert state.get("volume") is None
        assert state.get("volume", 100) == 100
        state.set("volume", 80)
        state.set("volume", 65)
        state.set_many({"schedule": schedule, "schedule_version": 42, "clock_floor": 1.5e9})
    with open_db(path) as db:
        state = StateStore(db)
        assert state.get("volume") == 65
        assert state.get("schedule") == schedule
        assert state.keys() == ["clock_floor", "schedule", "schedule_version", "volume"]
        assert state.delete("clock_floor") is True
        assert state.delete("clock_floor") is False
        assert state.get("clock_floor") is None


def test_set_many_with_a_bad_value_writes_nothing(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        state = StateStore(db)
        state.set_many({"schedule": {"v": 1}, "schedule_version": 1})
        with pytest.raises(ValueError, match="'schedule_version' is not JSON-serialisable"):
            state.set_many({"schedule": {"v": 2}, "schedule_version": object()})
        with pytest.raises(ValueError, match="'hb_seq' is not JSON-serialisable"):
            state.set("hb_seq", float("nan"))
        assert (state.get("schedule"), state.get("schedule_version")) == ({"v": 1}, 1)


def test_bad_key_is_named(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db, pytest.raises(ValueError, match="state key"):
        StateStore(db).set("", 1)
