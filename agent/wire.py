"""Facts of the wire protocol (PROTOCOL §2-§4, §6.3, §6.4) in one place, shared by the
agent and the console (agent/central/): the command table, the topics, proof ids.

Pure data and pure functions; no I/O. Everything else reads these instead of
keeping its own copy (a command added here is known to the verifier, the console's
signer, key generation and the ack tracker alike).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

# ---- §3/§4: the command table --------------------------------------------------------

PriorityRule = Literal["items_max", "own", "of_named", "cap", "zero"]


@dataclass(frozen=True)
class CommandSpec:
    """One command of §4.

    `long_running`: gets a second ack, `done` or `failed` (§6.3).
    `priority`: how its priority for the key-scope check (§3 step 8) is found:
    `items_max` the highest of its schedule items; `own` its `priority` argument
    (default `default_priority`); `of_named` that of the active alert/session it
    names (0 when none); `cap` always `default_priority` (a CAP becomes an emergency,
    docs/PROTOCOL-NOTES.md); `zero` 0 (and, §3, it may not interrupt anything).
    """

    name: str
    long_running: bool
    priority: PriorityRule
    default_priority: int = 0


_SPECS: Final = (
    CommandSpec("schedule.set", False, "items_max", 20),
    CommandSpec("alert.start", True, "own", 100),
    CommandSpec("alert.stop", True, "of_named"),
    CommandSpec("alert.cap", True, "cap", 100),
    CommandSpec("live.start", True, "own", 60),
    CommandSpec("live.stop", True, "of_named"),
    CommandSpec("volume.set", False, "zero"),
    CommandSpec("media.prefetch", True, "zero"),
    CommandSpec("status.request", False, "zero"),
    CommandSpec("test.run", True, "zero"),
    CommandSpec("agent.restart", False, "zero"),
    CommandSpec("agent.update", True, "zero"),
)
COMMANDS: Final[Mapping[str, CommandSpec]] = {c.name: c for c in _SPECS}
LONG_RUNNING: Final[frozenset[str]] = frozenset(c.name for c in _SPECS if c.long_running)


def is_long_running(cmd: str) -> bool:
    spec = COMMANDS.get(cmd)
    return spec is not None and spec.long_running


# ---- §2: topics ------------------------------------------------------------------------

ROOT: Final = "tcs/v1"
DEV_PREFIX: Final = f"{ROOT}/dev/"
GRP_PREFIX: Final = f"{ROOT}/grp/"
DEVICE_REPORTS: Final = ("state", "hb", "ack", "proof", "event")


def device_topic(device: str, leaf: str) -> str:
    """`tcs/v1/dev/<device>/<leaf>` (leaf: cmd or one of DEVICE_REPORTS)."""
    return f"{DEV_PREFIX}{device}/{leaf}"


def group_topic(group: str, leaf: str = "cmd") -> str:
    return f"{GRP_PREFIX}{group}/{leaf}"


# ---- §6.4: proof ids ---------------------------------------------------------------------


def proof_id(key: str, at_wall: float | None, *, tag: str = "") -> str:
    """The `id` of a proof: unique, and the same when the same record is re-sent.

    `key` names what it proves (a planner key such as `news@2026-11-24T05:30+07:00`
    or `alert:flood-1`, prefixed by the output for outputs other than the speaker);
    `at_wall` a wall time that fixes this segment (its first sample, or when the
    alert was accepted), so a proof written again after a crash keeps its id (§6.4
    allows the duplicate). Without such a time the id gets a random part: it can
    then never repeat, across restarts either.
    """
    base = f"{key}#{at_wall:.3f}" if at_wall is not None else f"{key}#x{uuid.uuid4().hex[:16]}"
    return f"{base}#{tag}" if tag else base
