"""QuietHours: start included, end excluded, wrapping midnight (PROTOCOL §5.2)."""

from __future__ import annotations

import pytest

from agent.config import QuietHours


def minute(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@pytest.mark.parametrize(
    ("at", "quiet"),
    [
        ("21:59", False),
        ("22:00", True),  # start included
        ("23:59", True),
        ("00:00", True),  # across midnight
        ("04:59", True),
        ("05:00", False),  # end excluded
        ("12:00", False),
    ],
)
def test_wrapping_span(at: str, quiet: bool) -> None:
    assert QuietHours.parse("22:00-05:00").contains(minute(at)) is quiet


@pytest.mark.parametrize(
    ("at", "quiet"),
    [("12:59", False), ("13:00", True), ("13:59", True), ("14:00", False), ("00:00", False)],
)
def test_same_day_span(at: str, quiet: bool) -> None:
    assert QuietHours.parse("13:00-14:00").contains(minute(at)) is quiet


def test_span_ending_at_midnight_and_starting_at_midnight() -> None:
    to_midnight = QuietHours.parse("23:00-00:00")
    assert to_midnight.contains(minute("23:59")) and not to_midnight.contains(0)
    from_midnight = QuietHours.parse("00:00-06:00")
    assert from_midnight.contains(0) and not from_midnight.contains(minute("06:00"))
    assert not from_midnight.contains(minute("23:59"))


def test_parse_keeps_text_and_minutes() -> None:
    q = QuietHours.parse(" 22:30-05:15 ")
    assert (q.start_min, q.end_min, q.text) == (22 * 60 + 30, 5 * 60 + 15, "22:30-05:15")


@pytest.mark.parametrize("text", ["22:00", "22-05", "22:00-5:00", "25:00-05:00", "22:60-05:00", ""])
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        QuietHours.parse(text)


def test_empty_span_is_rejected() -> None:
    with pytest.raises(ValueError, match="start equals end"):
        QuietHours.parse("05:00-05:00")


@pytest.mark.parametrize("bad", [-1, 1440])
def test_contains_rejects_minutes_outside_the_day(bad: int) -> None:
    with pytest.raises(ValueError, match="0-1439"):
        QuietHours.parse("22:00-05:00").contains(bad)
