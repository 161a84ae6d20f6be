"""Quiet hours: start included, end excluded, wrapping midnight; emergencies exempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from support.scheduler import HCM, at, item

from agent.scheduler import in_quiet, parse_quiet_hours, quiet_warnings, sounds_in_quiet
from agent.scheduler.quiet import next_quiet_start

NIGHT = parse_quiet_hours("22:00-05:00")


@pytest.mark.parametrize(
    ("when", "quiet"),
    [
        ("2026-11-24 21:59:59", False),
        ("2026-11-24 22:00", True),  # start included
        ("2026-11-24 23:59", True),
        ("2026-11-25 00:00", True),  # wraps midnight
        ("2026-11-25 04:59:59", True),
        ("2026-11-25 05:00", False),  # end excluded
        ("2026-11-25 12:00", False),
    ],
)
def test_boundaries_of_a_span_wrapping_midnight(when: str, quiet: bool) -> None:
    assert in_quiet(at(when), HCM, NIGHT) is quiet


def test_span_within_one_day() -> None:
    siesta = parse_quiet_hours("11:30-13:30")
    assert not in_quiet(at("2026-11-24 11:29"), HCM, siesta)
    assert in_quiet(at("2026-11-24 11:30"), HCM, siesta)
    assert not in_quiet(at("2026-11-24 13:30"), HCM, siesta)
    assert not in_quiet(at("2026-11-24 23:00"), HCM, siesta)


def test_no_quiet_hours_configured_is_never_quiet() -> None:
    assert not in_quiet(at("2026-11-24 23:00"), HCM, None)
    assert not sounds_in_quiet(at("2026-11-24 23:00"), HCM, None, 3600)


@pytest.mark.parametrize("text", ["22:00", "25:00-05:00", "22:00-05:60", "10:00-10:00", "x"])
def test_bad_quiet_hours_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="quiet hours"):
        parse_quiet_hours(text)


def test_a_known_duration_reaching_into_quiet_hours_counts() -> None:
    start = at("2026-11-24 21:50")
    assert not sounds_in_quiet(start, HCM, NIGHT, None)  # unknown length: its start only
    assert not sounds_in_quiet(start, HCM, NIGHT, 600)  # ends 22:00 exactly: end is excluded
    assert sounds_in_quiet(start, HCM, NIGHT, 601)
    assert not sounds_in_quiet(at("2026-11-25 05:00"), HCM, NIGHT, 16 * 3600)
    assert sounds_in_quiet(at("2026-11-25 05:00"), HCM, NIGHT, 17 * 3600 + 1)


def test_next_quiet_start_is_strictly_after() -> None:
    assert next_quiet_start(at("2026-11-24 21:00"), HCM, NIGHT) == at("2026-11-24 22:00")
    assert next_quiet_start(at("2026-11-24 22:00"), HCM, NIGHT) == at("2026-11-25 22:00")


@dataclass(frozen=True)
class ConfigShaped:
    """Stands for agent.config.QuietHours: only its shape matters to the scheduler."""

    start_min: int
    end_min: int
    text: str

    def contains(self, minute_of_day: int) -> bool:
        return minute_of_day >= self.start_min or minute_of_day < self.end_min


def test_warnings_name_each_item_and_its_first_quiet_time() -> None:
    items = [
        item("late-news", "2026-11-24 22:30", rrule="FREQ=DAILY"),
        item("dawn", "2026-11-25 04:45", priority=60),  # priority band: also silenced
        item("typhoon-drill", "2026-11-24 23:00", priority=95),  # emergency: never silenced
        item("morning", "2026-11-25 05:00", rrule="FREQ=DAILY"),  # end excluded: fine
    ]
    quiet = ConfigShaped(22 * 60, 5 * 60, "22:00-05:00")
    warnings = quiet_warnings(items, HCM, quiet, at("2026-11-24 12:00"), timedelta(days=7))
    assert len(warnings) == 2
    assert "'late-news'" in warnings[0]
    assert "2026-11-24T22:30+07:00" in warnings[0]
    assert "22:00-05:00" in warnings[0]
    assert "7 occurrence(s)" in warnings[0]
    assert "'dawn'" in warnings[1] and "2026-11-25T04:45+07:00" in warnings[1]


def test_warning_when_known_duration_runs_into_quiet_hours() -> None:
    items = [item("film", "2026-11-24 21:00")]
    now = at("2026-11-24 12:00")
    assert quiet_warnings(items, HCM, NIGHT, now, timedelta(days=1)) == []
    warnings = quiet_warnings(items, HCM, NIGHT, now, timedelta(days=1), {"film": 2 * 3600})
    assert len(warnings) == 1 and "'film'" in warnings[0]
    assert quiet_warnings(items, HCM, None, now, timedelta(days=1), {"film": 7200}) == []
