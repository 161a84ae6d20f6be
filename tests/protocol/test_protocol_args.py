"""validate_args for every command (PROTOCOL §4-§5.3): typed values or an error naming the field."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from support.protocol import SHA, VALID_ARGS, audio_item, media

from agent.commands import (
    KNOWN_COMMANDS,
    LONG_RUNNING,
    ArgsError,
    priority_of,
    validate_args,
    validate_args_warn,
)
from agent.model import (
    AgentRestart,
    AlertCap,
    AlertStart,
    AlertStop,
    LiveStart,
    LiveStop,
    MediaRef,
    ScheduleSet,
    Slide,
    StatusRequest,
    VolumeSet,
)
from agent.model import (
    TestRun as SelfTestArgs,
)

ICT = timezone(timedelta(hours=7))


def bad(cmd: str, args: Any) -> str:
    with pytest.raises(ArgsError) as err:
        validate_args(cmd, args)
    return err.value.detail


def test_catalogue() -> None:
    assert set(VALID_ARGS) == KNOWN_COMMANDS
    assert {"alert.start", "alert.stop", "alert.cap", "live.start", "live.stop", "test.run",
            "media.prefetch", "agent.update"} == LONG_RUNNING


@pytest.mark.parametrize("cmd", sorted(KNOWN_COMMANDS))
def test_every_command_valid_example_parses(cmd: str) -> None:
    validate_args(cmd, copy.deepcopy(VALID_ARGS[cmd]))


def test_args_must_be_an_object() -> None:
    assert bad("volume.set", [70]) == "args: not an object"


# --- schedule.set ---------------------------------------------------------------


def test_schedule_set_full_item() -> None:
    out = validate_args("schedule.set", {"version": 42, "items": [audio_item()]})
    assert isinstance(out, ScheduleSet) and out.version == 42
    item = out.items[0]
    assert item.start == datetime(2026, 11, 24, 5, 30, tzinfo=ICT)
    assert item.until == datetime(2026, 12, 31, 23, 59, 59, tzinfo=ICT)
    assert item.media == (MediaRef("https://cdn.example.vn/a.mp3", SHA, 1000, "audio/mpeg"),)
    assert (item.rrule, item.window_s, item.priority, item.volume, item.resume) == (
        "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR,SA,SU", 300, 20, 80, "join")


def test_schedule_item_defaults_and_lowercased_sha() -> None:
    raw = {"id": "x", "kind": "audio", "start": "2026-11-24T05:30:00Z",
           "media": [media(sha="AB" * 32)]}
    item = validate_args("schedule.set", {"version": 0, "items": [raw]})
    assert isinstance(item, ScheduleSet)
    it = item.items[0]
    assert (it.rrule, it.until, it.window_s, it.priority, it.volume, it.resume) == (
        None, None, 300, 20, 100, "join")
    assert it.media[0].sha256 == "ab" * 32


def test_empty_schedule_is_valid() -> None:
    assert validate_args("schedule.set", {"version": 5, "items": []}) == ScheduleSet(5, ())


def test_slides_item() -> None:
    raw = {"id": "board", "kind": "slides", "start": "2026-11-24T06:00:00+07:00",
           "slides": [{"text": "Họp dân 19h", "duration_s": 10, "style": {"color": "red"}},
                      {"media": media(mime="image/png"), "duration_s": 7.5}]}
    out = validate_args("schedule.set", {"version": 1, "items": [raw]})
    assert isinstance(out, ScheduleSet)
    assert out.items[0].slides == (
        Slide(10.0, text="Họp dân 19h", style={"color": "red"}),
        Slide(7.5, media=MediaRef("https://cdn.example.vn/a.mp3", SHA, 1000, "image/png")),
    )


@pytest.mark.parametrize(
    ("mutate", "detail"),
    [
        ({"version": -1}, "version: -1 is out of range (0-9007199254740992)"),
        ({"version": "3"}, "version: '3' is not an integer"),
        ({"version": True}, "version: True is not an integer"),
        ({"items": {}}, "items: not a list"),
    ],
)
def test_schedule_set_top_level_errors(mutate: dict[str, Any], detail: str) -> None:
    args = dict(VALID_ARGS["schedule.set"], **mutate)
    assert bad("schedule.set", args) == detail


def test_schedule_missing_version() -> None:
    assert bad("schedule.set", {"items": []}) == "version: missing"


@pytest.mark.parametrize(
    ("over", "detail"),
    [
        ({"id": ""}, "items[1].id: empty"),
        ({"id": "x" * 129}, "items[1].id: 129 characters, at most 128"),
        ({"kind": "video"}, "items[1].kind: 'video' is not one of audio, slides"),
        ({"media": []}, "items[1].media: empty list"),
        ({"media": [media(url="ftp://x.vn/a.mp3")]},
         "items[1].media[0].url: scheme 'ftp' not allowed (use http, https)"),
        ({"media": [media(url="https:///a.mp3")]},
         "items[1].media[0].url: 'https:///a.mp3' has no host"),
        ({"media": [media(sha="ab" * 31)]}, "items[1].media[0].sha256: not 64 hex digits"),
        ({"media": [media(size=-1)]}, "items[1].media[0].size: -1 is out of range (>= 0)"),
        ({"media": [{"url": "https://x.vn/a", "sha256": SHA, "size": 1}]},
         "items[1].media[0].type: missing"),
        ({"start": "2026-11-24T05:30:00"}, "items[1].start: '2026-11-24T05:30:00' is not an "
                                           "RFC 3339 time with offset"),
        ({"start": 1795000000}, "items[1].start: 1795000000 is not an RFC 3339 time with offset"),
        ({"until": "2026-11-01T00:00:00+07:00"}, "items[1].until: before start"),
        ({"window_s": -5}, "items[1].window_s: -5 is out of range (0-86400)"),
        ({"priority": 101}, "items[1].priority: 101 is out of range (0-100)"),
        ({"volume": 100.0}, "items[1].volume: 100.0 is not an integer"),
        ({"resume": "pause"}, "items[1].resume: 'pause' is not one of join, restart, drop"),
        ({"rrule": "FREQ=SOMETIMES"}, None),
        ({"rrule": "DTSTART:20261124T000000\nRRULE:FREQ=DAILY"},
         "items[1].rrule: must not contain DTSTART (start gives it)"),
        ({"rrule": "FREQ=DAILY;BYHOUR=25"}, None),
        ({"rrule": "FREQ=DAILY;UNTIL=20261231T000000"}, None),  # floating UNTIL, aware start
    ],
)
def test_schedule_item_errors_name_the_field(over: dict[str, Any], detail: str | None) -> None:
    args = {"version": 1, "items": [audio_item("ok"), audio_item("second", **over)]}
    got = bad("schedule.set", args)
    if detail is None:
        assert got.startswith("items[1].rrule: not an RFC 5545 rule"), got
    else:
        assert got == detail


def test_missing_required_item_fields() -> None:
    for field in ("id", "kind", "start", "media"):
        item = audio_item()
        del item[field]
        assert bad("schedule.set", {"version": 1, "items": [item]}) == f"items[0].{field}: missing"


def test_duplicate_item_ids() -> None:
    args = {"version": 1, "items": [audio_item("a"), audio_item("b"), audio_item("a")]}
    assert bad("schedule.set", args) == "items[2].id: duplicate 'a'"


@pytest.mark.parametrize(
    ("slide", "detail"),
    [
        ({"text": "a", "duration_s": 0},
         "items[0].slides[0].duration_s: 0 must be > 0 and <= 86400"),
        ({"text": "a", "duration_s": "5"}, "items[0].slides[0].duration_s: '5' is not a number"),
        ({"text": "a"}, "items[0].slides[0].duration_s: missing"),
        ({"duration_s": 5}, "items[0].slides[0]: needs exactly one of media or text"),
        ({"text": "a", "media": media(), "duration_s": 5},
         "items[0].slides[0]: needs exactly one of media or text"),
        ({"text": "a", "duration_s": 5, "style": "bold"},
         "items[0].slides[0].style: not an object"),
        ({"text": "a", "duration_s": 5, "style": {"a": [[[{"b": 1}]]]}},
         "items[0].slides[0].style: nested deeper than 4"),
        ({"media": {"url": "x"}, "duration_s": 5},
         "items[0].slides[0].media.url: scheme '(none)' not allowed (use http, https)"),
    ],
)
def test_slide_errors(slide: dict[str, Any], detail: str) -> None:
    item = {"id": "b", "kind": "slides", "start": "2026-11-24T06:00:00+07:00", "slides": [slide]}
    assert bad("schedule.set", {"version": 1, "items": [item]}) == detail


def test_slides_kind_needs_slides() -> None:
    item = {"id": "b", "kind": "slides", "start": "2026-11-24T06:00:00+07:00", "slides": []}
    assert bad("schedule.set", {"version": 1, "items": [item]}) == "items[0].slides: empty list"


def test_file_media_url_is_refused_in_commands() -> None:
    # §5.1 (2026-12-01): http(s) only; file:// is for the technician's CLI.
    detail = bad("media.prefetch", {"media": [media(url="file:///etc/tcs/broker.pass")]})
    assert detail == "media[0].url: scheme 'file' not allowed (use http, https)"


# --- alerts ---------------------------------------------------------------------


def test_alert_start_defaults() -> None:
    out = validate_args("alert.start", {"alert_id": "a", "text": "Bão"})
    assert out == AlertStart(alert_id="a", text="Bão", lang="vi", priority=100, repeat=3,
                             gap_s=5.0, chime=True, volume=100, until=None)


def test_alert_start_all_fields() -> None:
    out = validate_args("alert.start", {
        "alert_id": "a", "media": [media()], "priority": 90, "repeat": 1, "gap_s": 0,
        "chime": False, "volume": 55, "lang": "en", "until": "2026-11-24T06:00:00+07:00"})
    assert isinstance(out, AlertStart)
    assert (out.text, out.priority, out.repeat, out.gap_s, out.chime, out.volume, out.lang) == (
        None, 90, 1, 0.0, False, 55, "en")
    assert out.until == datetime(2026, 11, 24, 6, tzinfo=ICT)


@pytest.mark.parametrize(
    ("over", "detail"),
    [
        ({"alert_id": 5}, "alert_id: 5 is not a string"),
        ({"text": None}, "text: None is not a string"),
        ({"priority": 89}, "priority: 89 is out of range (90-100)"),
        ({"repeat": 0}, "repeat: 0 is out of range (1-100)"),
        ({"repeat": 101}, "repeat: 101 is out of range (1-100)"),
        ({"gap_s": -1}, "gap_s: -1 must be >= 0 and <= 3600"),
        ({"chime": "yes"}, "chime: 'yes' is not true or false"),
        ({"volume": 101}, "volume: 101 is out of range (0-100)"),
        ({"until": "tomorrow"}, "until: 'tomorrow' is not an RFC 3339 time with offset"),
        ({"media": [media(sha="x")]}, "media[0].sha256: not 64 hex digits"),
    ],
)
def test_alert_start_errors(over: dict[str, Any], detail: str) -> None:
    assert bad("alert.start", dict({"alert_id": "a", "text": "t"}, **over)) == detail


def test_alert_start_needs_media_or_text() -> None:
    assert bad("alert.start", {"alert_id": "a"}).startswith("media/text")
    assert bad("alert.start", {"alert_id": "a", "media": []}).startswith("media/text")
    assert bad("alert.start", {"text": "t"}) == "alert_id: missing"


def test_alert_stop() -> None:
    assert validate_args("alert.stop", {"alert_id": "a"}) == AlertStop("a")
    assert bad("alert.stop", {}) == "alert_id: missing"
    assert bad("alert.stop", {"alert_id": ""}) == "alert_id: empty"


def test_alert_cap() -> None:
    xml = VALID_ARGS["alert.cap"]["xml"]
    assert validate_args("alert.cap", {"xml": xml}) == AlertCap(xml)
    assert bad("alert.cap", {}) == "xml: missing"
    assert bad("alert.cap", {"xml": "<alert>"}).startswith("xml: not well-formed XML")
    cap11 = xml.replace("cap:1.2", "cap:1.1")
    assert "not a CAP 1.2 alert" in bad("alert.cap", {"xml": cap11})
    huge = xml.replace("Bão số 9", "x" * (201 * 1024))
    assert bad("alert.cap", {"xml": huge}).startswith("xml: ")


# --- live, volume, prefetch, status, test, restart ------------------------------


def test_live_start() -> None:
    assert validate_args("live.start", {"session_id": "s", "url": "icecast://r.vn:8000/m"}) == \
        LiveStart("s", "icecast://r.vn:8000/m", 60, None)
    out = validate_args("live.start", {"session_id": "s", "url": "https://r.vn/live.m3u8",
                                       "priority": 80, "until": "2026-11-24T06:00:00Z"})
    assert isinstance(out, LiveStart) and out.priority == 80 and out.until is not None
    assert bad("live.start", {"session_id": "s", "url": "file:///etc/passwd"}).startswith(
        "url: scheme 'file' not allowed")
    assert bad("live.start", {"session_id": "s", "url": "rtsp://h/x", "priority": -1}) == \
        "priority: -1 is out of range (0-100)"
    assert bad("live.start", {"url": "rtsp://h/x"}) == "session_id: missing"


def test_live_stop() -> None:
    assert validate_args("live.stop", {"session_id": "s"}) == LiveStop("s")
    assert bad("live.stop", {"session_id": "s" * 200}) == "session_id: 200 characters, at most 128"


def test_volume_set() -> None:
    assert validate_args("volume.set", {"level": 0}) == VolumeSet(0)
    assert validate_args("volume.set", {"level": 100}) == VolumeSet(100)
    assert bad("volume.set", {"level": 101}) == "level: 101 is out of range (0-100)"
    assert bad("volume.set", {"level": 50.5}) == "level: 50.5 is not an integer"
    assert bad("volume.set", {}) == "level: missing"


def test_media_prefetch() -> None:
    assert bad("media.prefetch", {"media": []}) == "media: empty list"
    assert bad("media.prefetch", {"media": ["x"]}) == "media[0]: not an object"


def test_no_arg_commands_ignore_extra_fields_with_warning() -> None:
    assert validate_args_warn("status.request", {"x": 1}) == (
        StatusRequest(), ("x: unknown field ignored",))
    assert validate_args("agent.restart", {}) == AgentRestart()


def test_test_run() -> None:
    assert validate_args("test.run", {"what": "display"}) == SelfTestArgs("display")
    assert bad("test.run", {"what": "horn"}) == "what: 'horn' is not one of speaker, display"


def test_nested_unknown_fields_are_warned_with_path() -> None:
    item = audio_item(colour="blue")
    _, warnings = validate_args_warn("schedule.set", {"version": 1, "items": [item], "v": 2})
    assert warnings == ("items[0].colour: unknown field ignored", "v: unknown field ignored")


# --- priority_of (lenient) --------------------------------------------------------


def test_priority_of() -> None:
    assert priority_of("schedule.set", {"items": [{"priority": 30}, {}, {"priority": 70}]}) == 70
    assert priority_of("schedule.set", {"items": [{}]}) == 20
    assert priority_of("schedule.set", {"items": []}) == 0
    assert priority_of("schedule.set", {"items": "x"}) == 0
    assert priority_of("schedule.set", {"items": [{"priority": "high"}, 3]}) == 20
    assert priority_of("alert.start", {}) == 100
    assert priority_of("alert.start", {"priority": 95}) == 95
    assert priority_of("alert.start", {"priority": True}) == 100
    assert priority_of("alert.cap", {}) == 100
    assert priority_of("live.start", {}) == 60
    assert priority_of("live.start", {"priority": 200}) == 60
    assert priority_of("volume.set", {"level": 100}) == 0
    assert priority_of("schedule.set", None) == 0
