"""One source of truth for protocol facts (agent/wire.py), read by agent and console."""

from __future__ import annotations

from agent import wire
from agent.central import acl, mqtt, sign
from agent.commands import LONG_RUNNING, priority_of
from agent.model import COMMAND_NAMES
from agent.reports import Topics


def test_wire_every_implemented_command_is_in_the_table() -> None:
    assert set(COMMAND_NAMES) <= set(wire.COMMANDS)
    assert LONG_RUNNING == sign.LONG_RUNNING == wire.LONG_RUNNING
    assert tuple(wire.COMMANDS) == sign.KNOWN_COMMANDS


def test_wire_priority_rule_matches_the_scope_check() -> None:
    for spec in wire.COMMANDS.values():
        if spec.name not in COMMAND_NAMES:
            continue  # announced by the protocol, not implemented by this agent yet
        if spec.priority == "items_max":
            assert priority_of(spec.name, {"items": [{}]}) == spec.default_priority
            assert priority_of(spec.name, {"items": [{"priority": 70}, {}]}) == 70
        elif spec.priority == "own":
            assert priority_of(spec.name, {}) == spec.default_priority
            assert priority_of(spec.name, {"priority": 95}) == 95
        elif spec.priority == "cap":
            assert priority_of(spec.name, {"priority": 0}) == spec.default_priority
        elif spec.priority == "zero":
            assert priority_of(spec.name, {"priority": 100}) == 0


def test_wire_topics_are_the_same_everywhere() -> None:
    t = Topics("dev-0001")
    assert t.cmd == wire.device_topic("dev-0001", "cmd") == mqtt.device_topic("dev-0001", "cmd")
    assert t.group_cmd("vn-48") == wire.group_topic("vn-48") == mqtt.group_topic("vn-48", "cmd")
    assert acl.PREFIX == wire.ROOT and acl.DEVICE_REPORTS == wire.DEVICE_REPORTS


def test_wire_proof_ids_repeat_only_for_the_same_segment() -> None:
    assert wire.proof_id("alert:a", 1700000000.25) == wire.proof_id("alert:a", 1700000000.25)
    assert wire.proof_id("alert:a", 1.0, tag="unplayed").endswith("#unplayed")
    # Nothing fixes a segment that never sounded: its id never repeats (across restarts).
    ids = {wire.proof_id("news@x", None) for _ in range(1000)}
    assert len(ids) == 1000
