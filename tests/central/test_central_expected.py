"""Expected occurrences from the commands the console signed, with the agent's scheduler."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from support.month import MEDIA

from agent.central.acl import DeviceEntry
from agent.central.command_log import SentCommand
from agent.central.expected import expected_occurrences

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DEVICES = [DeviceEntry("dev-0001", ("vn-48",)), DeviceEntry("dev-0002", ("vn-48",))]


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=TZ).timestamp() * 1000)


def _schedule(jti: str, version: int, item: str, hh: int, issued: int,
              target: str = "vn-48", kind: str = "group") -> SentCommand:
    args = {"version": version, "items": [{
        "id": item, "kind": "audio", "media": [MEDIA], "start": f"2026-11-01T{hh:02d}:00:00+07:00",
        "rrule": "FREQ=DAILY"}]}
    return SentCommand(jti, issued, issued + 300_000, "op", "vn-48", "k", "schedule.set", kind,
                       target, args)


def test_higher_versions_replace_lower_ones_and_refusals_keep_the_old() -> None:
    commands = [
        _schedule("a", 1, "early", 6, _ms(2026, 11, 1, 0, 0)),
        _schedule("b", 2, "late", 7, _ms(2026, 11, 3, 0, 0)),
        _schedule("c", 1, "stale", 8, _ms(2026, 11, 4, 0, 0)),  # lower version: ignored
        _schedule("d", 3, "solo", 9, _ms(2026, 11, 4, 12, 0), "dev-0002", "device"),
    ]
    got = expected_occurrences(commands, DEVICES, TZ, _ms(2026, 11, 1, 0, 0),
                               _ms(2026, 11, 6, 0, 0), refused=frozenset({("dev-0001", "b")}))
    by_device: dict[str, list[tuple[str, int]]] = {}
    for e in got:
        by_device.setdefault(e.device, []).append((e.item_id, e.at_ms))
    # dev-0001 refused version 2: "early" every day of the five.
    assert by_device["dev-0001"] == [("early", _ms(2026, 11, d, 6, 0)) for d in range(1, 6)]
    # dev-0002: early 1-2 Nov, late 3-4 Nov, then its own version 3 from 4 Nov noon.
    assert by_device["dev-0002"] == [
        ("early", _ms(2026, 11, 1, 6, 0)), ("early", _ms(2026, 11, 2, 6, 0)),
        ("late", _ms(2026, 11, 3, 7, 0)), ("late", _ms(2026, 11, 4, 7, 0)),
        ("solo", _ms(2026, 11, 5, 9, 0))]


def test_a_schedule_the_device_would_reject_as_bad_args_expects_nothing() -> None:
    bad = _schedule("x", 1, "morning", 6, _ms(2026, 11, 1, 0, 0))
    bad.args["items"][0]["rrule"] = "FREQ=SOMETIMES"
    assert expected_occurrences([bad], DEVICES, TZ, _ms(2026, 11, 1, 0, 0),
                                _ms(2026, 11, 3, 0, 0)) == []
