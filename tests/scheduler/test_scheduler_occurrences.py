"""Occurrence instants from RFC 5545 rules, in the device's zone (PROTOCOL §5.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from support.scheduler import HCM, at, item

from agent.model import MediaRef, ScheduleItem, Slide
from agent.scheduler import (
    next_occurrence,
    occurrence_key,
    occurrences,
    upcoming_media,
    validate_rrule,
)

PARIS = ZoneInfo("Europe/Paris")


def local_times(occs: list) -> list[str]:  # type: ignore[type-arg]
    return [o.at.astimezone(HCM).strftime("%a %Y-%m-%d %H:%M") for o in occs]


def test_daily_rule_gives_one_instant_per_day_at_local_time() -> None:
    it = item("morning-news", "2026-11-24 05:30", rrule="FREQ=DAILY")
    occs = occurrences(it, HCM, at("2026-11-24 00:00"), at("2026-11-27 00:00"))
    assert local_times(occs) == [
        "Tue 2026-11-24 05:30",
        "Wed 2026-11-25 05:30",
        "Thu 2026-11-26 05:30",
    ]
    assert occs[0].key == "morning-news@2026-11-23T22:30:00Z"
    assert occs[0].window_end == at("2026-11-24 05:35")
    assert occs[0].priority == 20


def test_weekly_byday_only_on_the_named_days() -> None:
    it = item("commune-news", "2026-11-23 17:00", rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR")
    occs = occurrences(it, HCM, at("2026-11-23 00:00"), at("2026-12-07 00:00"))
    assert local_times(occs) == [
        "Mon 2026-11-23 17:00",
        "Wed 2026-11-25 17:00",
        "Fri 2026-11-27 17:00",
        "Mon 2026-11-30 17:00",
        "Wed 2026-12-02 17:00",
        "Fri 2026-12-04 17:00",
    ]


def test_range_is_half_open_and_series_starts_at_start() -> None:
    it = item("x", "2026-11-24 05:30", rrule="FREQ=DAILY")
    # end excluded
    assert occurrences(it, HCM, at("2026-11-24 00:00"), at("2026-11-25 05:30")) == occurrences(
        it, HCM, at("2026-11-24 00:00"), at("2026-11-25 05:29")
    )
    # start included
    assert len(occurrences(it, HCM, at("2026-11-25 05:30"), at("2026-11-25 05:31"))) == 1
    # nothing before the item's start
    assert occurrences(it, HCM, at("2026-11-01 00:00"), at("2026-11-24 05:30")) == []


def test_item_until_is_inclusive_and_ends_the_series() -> None:
    it = item("x", "2026-11-24 05:30", rrule="FREQ=DAILY", until="2026-11-26 05:30")
    occs = occurrences(it, HCM, at("2026-11-24 00:00"), at("2026-12-31 00:00"))
    assert local_times(occs)[-1] == "Thu 2026-11-26 05:30"
    assert len(occs) == 3
    assert next_occurrence(it, HCM, at("2026-11-26 06:00")) is None


def test_rrule_until_in_utc_and_count_are_honoured() -> None:
    # UNTIL 2026-11-25T22:30Z is 2026-11-26 05:30 local: included.
    it = item("x", "2026-11-24 05:30", rrule="RRULE:FREQ=DAILY;UNTIL=20261125T223000Z")
    assert len(occurrences(it, HCM, at("2026-11-24 00:00"), at("2026-12-31 00:00"))) == 3
    it2 = item("y", "2026-11-24 05:30", rrule="FREQ=HOURLY;INTERVAL=2;COUNT=4")
    assert local_times(occurrences(it2, HCM, at("2026-11-24 00:00"), at("2026-11-25 00:00"))) == [
        "Tue 2026-11-24 05:30",
        "Tue 2026-11-24 07:30",
        "Tue 2026-11-24 09:30",
        "Tue 2026-11-24 11:30",
    ]


def test_item_without_rrule_has_exactly_one_occurrence() -> None:
    it = item("once", "2026-11-24 19:00")
    assert len(occurrences(it, HCM, at("2026-11-24 00:00"), at("2026-12-24 00:00"))) == 1
    assert occurrences(it, HCM, at("2026-11-24 19:01"), at("2026-12-24 00:00")) == []
    nxt = next_occurrence(it, HCM, at("2026-11-24 18:00"))
    assert nxt is not None and nxt.at == at("2026-11-24 19:00")
    assert next_occurrence(it, HCM, at("2026-11-24 19:00")) is None


def test_start_given_in_another_offset_is_evaluated_on_device_local_time() -> None:
    # 22:30 UTC the day before = 05:30 in Ho Chi Minh City, every day.
    it = ScheduleItem(
        id="x", kind="audio", start=datetime(2026, 11, 23, 22, 30, tzinfo=UTC), rrule="FREQ=DAILY"
    )
    occs = occurrences(it, HCM, at("2026-11-24 00:00"), at("2026-11-26 00:00"))
    assert local_times(occs) == ["Tue 2026-11-24 05:30", "Wed 2026-11-25 05:30"]


def test_local_wall_time_kept_across_dst_where_a_zone_has_it() -> None:
    start = datetime(2026, 3, 27, 5, 30, tzinfo=PARIS)  # CET, +01:00
    it = ScheduleItem(id="x", kind="audio", start=start, rrule="FREQ=DAILY")
    occs = occurrences(it, PARIS, start, start + timedelta(days=4))
    assert [o.at.strftime("%d %H:%M%z") for o in occs] == [
        "27 05:30+0100",
        "28 05:30+0100",
        "29 05:30+0200",  # DST began at 02:00 that night: still 05:30 on the wall
        "30 05:30+0200",
    ]
    # the instants are 23 h apart across the change, not 24
    assert occs[2].at.astimezone(UTC) - occs[1].at.astimezone(UTC) == timedelta(hours=23)


def test_dst_gap_and_overlap_give_exactly_one_instant_per_day() -> None:
    gap = ScheduleItem(
        id="g", kind="audio", start=datetime(2026, 3, 28, 2, 30, tzinfo=PARIS), rrule="FREQ=DAILY"
    )
    occs = occurrences(gap, PARIS, gap.start, gap.start + timedelta(days=3))
    # 02:30 does not exist on 29 March: it sounds right after the gap, once.
    assert [o.at.strftime("%d %H:%M%z") for o in occs] == [
        "28 02:30+0100",
        "29 03:30+0200",
        "30 02:30+0200",
    ]
    overlap = ScheduleItem(
        id="o", kind="audio", start=datetime(2026, 10, 24, 2, 30, tzinfo=PARIS), rrule="FREQ=DAILY"
    )
    occs = occurrences(overlap, PARIS, overlap.start, overlap.start + timedelta(days=3))
    assert [o.at.strftime("%d %H:%M%z") for o in occs] == [
        "24 02:30+0200",
        "25 02:30+0200",  # 02:30 happens twice on 25 October: the first one only
        "26 02:30+0100",
    ]
    assert len({o.key for o in occs}) == 3


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "non-empty"),
        ("FREQ=SOMETIMES", "not a valid"),
        ("DTSTART:20261124T053000\nRRULE:FREQ=DAILY", "single RRULE"),
        ("FREQ=DAILY;DTSTART=20261124T053000", "DTSTART"),
        ("FREQ=DAILY;" + "BYHOUR=1;" * 200, "longer than"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        validate_rrule(text)


def test_good_rules_validate() -> None:
    validate_rrule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;UNTIL=20261231T165959Z")
    validate_rrule("RRULE:FREQ=DAILY;COUNT=3")


def test_naive_bounds_are_refused() -> None:
    it = item("x", "2026-11-24 05:30", rrule="FREQ=DAILY")
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrences(it, HCM, datetime(2026, 11, 24), at("2026-11-25 00:00"))
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrence_key("x", datetime(2026, 11, 24))


def _ref(n: int) -> MediaRef:
    return MediaRef(f"http://m/{n}.mp3", f"{n:064x}", 100, "audio/mpeg")


def test_upcoming_media_lists_each_file_once_at_its_earliest_need() -> None:
    news = ScheduleItem(
        id="news",
        kind="audio",
        start=at("2026-11-24 05:30"),
        rrule="FREQ=DAILY",
        media=(_ref(1), _ref(2)),
    )
    board = ScheduleItem(
        id="board",
        kind="slides",
        start=at("2026-11-24 07:00"),
        slides=(Slide(10, media=_ref(3)), Slide(5, text="Xin chào"), Slide(10, media=_ref(1))),
    )
    later = ScheduleItem(id="later", kind="audio", start=at("2026-11-26 07:00"), media=(_ref(4),))
    got = upcoming_media([board, news, later], HCM, at("2026-11-24 05:32"), timedelta(hours=24))
    # news 05:30 is late but its window is open: needed now; `later` is beyond the horizon.
    assert got == [
        (at("2026-11-24 05:30"), _ref(1)),
        (at("2026-11-24 05:30"), _ref(2)),
        (at("2026-11-24 07:00"), _ref(3)),
    ]
    # After its window closed, today's news no longer counts: tomorrow's does.
    got = upcoming_media([news], HCM, at("2026-11-24 05:36"), timedelta(hours=24))
    assert got[0] == (at("2026-11-25 05:30"), _ref(1))
