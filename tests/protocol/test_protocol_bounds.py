"""Issue 7, "validate everything, bound everything": each bound of agent/commands.py
(listed in docs/PROTOCOL-NOTES.md) refuses its input `bad_args` with the field named;
stop commands carry the priority of what they stop (§3 step 8, 2026-12-01)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from support.protocol import NOW, Signer, audio_item, make_ctx, media, no_jti

from agent.commands import MAX_WARNINGS, ArgsError, validate_args, validate_args_warn
from agent.model import AgentUpdate
from agent.protocol import Command, Rejection, verify_command

TOPIC = "tcs/v1/dev/dev-0001/cmd"


def bad(cmd: str, args: Any, **kw: Any) -> str:
    with pytest.raises(ArgsError) as err:
        validate_args(cmd, args, **kw)
    return err.value.detail


def schedule(**over: Any) -> dict[str, Any]:
    return {"version": 1, "items": [audio_item(**over)]}


@pytest.mark.parametrize(
    ("over", "detail"),
    [
        ({"window_s": 10**12}, "items[0].window_s: 1000000000000 is out of range (0-86400)"),
        ({"start": "0001-01-01T00:00:00+07:00"},
         "items[0].start: year 1 is outside 2000-2100"),
        ({"until": "9999-12-31T23:59:59+07:00"},
         "items[0].until: year 9999 is outside 2000-2100"),
        ({"rrule": "FREQ=SECONDLY"},
         "items[0].rrule: FREQ=SECONDLY is not allowed (at most MINUTELY)"),
        ({"rrule": "FREQ=MINUTELY;BYSECOND=0,30"},
         "items[0].rrule: BYSECOND may name one second only (at most one a minute)"),
        ({"rrule": "FREQ=DAILY;COUNT=1000000"}, "items[0].rrule: COUNT 1000000 is above 2000"),
        ({"rrule": "FREQ=DAILY;INTERVAL=100000"}, "items[0].rrule: INTERVAL is above 10000"),
        ({"rrule": "FREQ=HOURLY;COUNT=3"},
         "items[0].rrule: COUNT needs FREQ=DAILY or longer (use UNTIL)"),
        ({"rrule": "FREQ=DAILY;BYHOUR=5,6;BYSETPOS=1"},
         "items[0].rrule: BYSETPOS needs FREQ=WEEKLY, MONTHLY or YEARLY"),
        ({"rrule": "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"},
         "items[0].rrule: COUNT and UNTIL must not both be given (RFC 5545)"),
        ({"rrule": "FREQ=DAILY;UNTIL=99991231T000000Z"},
         "items[0].rrule: UNTIL year 9999 is outside 2000-2100"),
        ({"rrule": "FREQ=YEARLY;BYEASTER=0"}, "items[0].rrule: BYEASTER is not RFC 5545"),
        ({"media": [media()] * 33}, "items[0].media: 33 entries, at most 32"),
        ({"media": [media(url="file:///etc/tcs/broker.pass")]},
         "items[0].media[0].url: scheme 'file' not allowed (use http, https)"),
    ],
)
def test_schedule_item_bounds(over: dict[str, Any], detail: str) -> None:
    assert bad("schedule.set", schedule(**over)) == detail


def test_version_and_item_count_bounds() -> None:
    assert bad("schedule.set", {"version": 2**53 + 1, "items": []}) == (
        "version: 9007199254740993 is out of range (0-9007199254740992)")
    assert validate_args("schedule.set", {"version": 2**53, "items": []})
    items = [audio_item(f"i{i}") for i in range(201)]
    assert bad("schedule.set", {"version": 1, "items": items}) == (
        "items: 201 entries, at most 200")


def test_alert_times_are_bounded_too() -> None:
    detail = bad("alert.start", {"alert_id": "a", "text": "x", "until": "0001-01-01T00:00:00Z"})
    assert detail == "until: year 1 is outside 2000-2100"


def test_declared_size_above_the_quota_is_refused() -> None:
    quota = 64 << 20
    detail = bad("media.prefetch", {"media": [media(size=quota + 1)]}, max_media_bytes=quota)
    assert detail == f"media[0].size: {quota + 1} is out of range (0-{quota})"
    assert validate_args("media.prefetch", {"media": [media(size=quota)]},
                         max_media_bytes=quota)  # fmt: skip


def test_unknown_field_warnings_are_bounded() -> None:
    junk = {f"field-{i:05d}" + "x" * 200: 1 for i in range(5000)}
    _, warnings = validate_args_warn("status.request", junk)
    assert len(warnings) == MAX_WARNINGS + 1
    assert warnings[-1] == f"{5000 - MAX_WARNINGS} more unknown fields ignored"
    assert all(len(w) <= 110 for w in warnings)
    assert len(json.dumps(warnings)) < 4096


def test_agent_update_args() -> None:
    out = validate_args("agent.update", {"version": "1.4.0rc1", "bundle": media()})
    assert isinstance(out, AgentUpdate) and not out.allow_downgrade
    assert bad("agent.update", {"version": "latest!", "bundle": media()}) == (
        "version: 'latest!' is not a PEP 440 version")
    assert bad("agent.update", {"version": "1.0"}) == "bundle: missing"
    assert bad("agent.update", {"version": "1.0", "bundle": media(url="file:///x")}).startswith(
        "bundle.url: scheme 'file' not allowed")


# --- §3 step 8: stops carry the priority of what they stop ------------------------------


@pytest.mark.parametrize("cmd,field", [("alert.stop", "alert_id"), ("live.stop", "session_id")])
def test_a_key_that_could_not_start_it_cannot_stop_it(cmd: str, field: str) -> None:
    commune = Signer.new("commune")
    ctx = make_ctx([commune.trust_key(("alert.stop", "live.stop"), max_priority=49)])
    active = {(cmd, "flood-1"): 100}
    ctx = replace(ctx, active_priority=lambda c, i: active.get((c, i), 0))

    def run(ident: str) -> Any:
        payload = commune.token(cmd, {field: ident}, iat=NOW)
        return verify_command(payload, TOPIC, ctx, now=NOW, clock_trusted=True,
                              time_lower_bound=0, seen_jti=no_jti)  # fmt: skip

    refused = run("flood-1")
    assert isinstance(refused, Rejection) and refused.code == "not_allowed"
    assert refused.detail == "key 'commune' may issue at most priority 49, this is 100"
    # Nothing by that id active: priority 0, allowed (and a no-op for the handler).
    accepted = run("other")
    assert isinstance(accepted, Command) and accepted.priority == 0
    # Once the alert is over, the same key may send the (harmless) stop.
    active.clear()
    assert isinstance(run("flood-1"), Command)
