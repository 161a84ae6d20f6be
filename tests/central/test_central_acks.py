"""What `send --wait-ack` waits for and which exit code it returns."""

from __future__ import annotations

import json

from agent.central.acks import EXIT_NO_ACK, EXIT_OK, EXIT_REJECTED, AckTracker


def ack(status: str, jti: str = "j1", code: str | None = None) -> bytes:
    return json.dumps({"jti": jti, "cmd": "alert.start", "status": status, "code": code,
                       "detail": None, "at": "2026-11-23T10:00:00.000+07:00"}).encode()


def test_long_running_command_waits_for_done() -> None:
    t = AckTracker("j1", "alert.start", frozenset({"dev-0001"}))
    assert t.add("dev-0001", ack("accepted")) is not None
    assert not t.complete() and t.running() == ["dev-0001"]
    assert t.add("dev-0001", ack("done")) is not None
    assert t.complete() and t.exit_code() == EXIT_OK


def test_short_command_completes_on_first_ack_and_foreign_acks_are_ignored() -> None:
    t = AckTracker("j1", "volume.set", frozenset({"dev-0001"}))
    assert t.add("dev-0001", ack("accepted", jti="other")) is None
    assert t.add("dev-0001", b"not json") is None
    assert not t.complete()
    t.add("dev-0001", ack("duplicate"))
    assert t.complete() and t.exit_code() == EXIT_OK


def test_rejection_or_failure_exits_3() -> None:
    t = AckTracker("j1", "volume.set", frozenset({"dev-0001"}))
    t.add("dev-0001", ack("rejected", code="bad_signature"))
    assert t.complete() and t.exit_code() == EXIT_REJECTED
    t2 = AckTracker("j1", "alert.start", frozenset({"dev-0001"}))
    t2.add("dev-0001", ack("accepted"))
    t2.add("dev-0001", ack("failed"))
    assert t2.exit_code() == EXIT_REJECTED


def test_group_waits_for_every_member_and_no_ack_exits_4() -> None:
    t = AckTracker("j1", "volume.set", frozenset({"dev-0001", "dev-0002"}))
    assert t.exit_code() == EXIT_NO_ACK
    t.add("dev-0001", ack("stale"))
    assert not t.complete() and t.missing() == ["dev-0002"] and t.exit_code() == EXIT_NO_ACK
    t.add("dev-0002", ack("accepted"))
    assert t.complete() and t.exit_code() == EXIT_OK


def test_replay_pair_waits_for_both_acks() -> None:
    t = AckTracker("j1", "volume.set", frozenset({"dev-0001"}), tokens=2)
    t.add("dev-0001", ack("accepted"))
    assert not t.complete()
    t.add("dev-0001", ack("rejected", code="replayed"))
    assert t.complete() and t.exit_code() == EXIT_REJECTED


def test_unknown_members_never_complete_early() -> None:
    t = AckTracker("j1", "volume.set", None)
    t.add("dev-0009", ack("accepted"))
    assert not t.complete() and t.exit_code() == EXIT_OK
