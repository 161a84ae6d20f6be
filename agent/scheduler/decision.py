"""Values exchanged between the planner and its runner: what to stop, what to start,
which proofs to write for occurrences decided without playing, when to ask again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agent.model import ResumeMode

Outcome = Literal["completed", "preempted", "resumed", "skipped", "failed", "cancelled"]
SourceKind = Literal["alert", "live", "test"]
SkipReason = Literal["quiet_hours", "window_passed", "clock_untrusted"]


def source_key(kind: SourceKind, source_id: str) -> str:
    """Key of an alert or live session in the planner (occurrence keys contain `@`)."""
    return f"{kind}:{source_id}"


@dataclass(frozen=True)
class ActiveSource:
    """An alert, live session or `test.run` the runner has running (accepted, not ended).

    A `test` source plays like a priority-0 item (PROTOCOL §3): it waits behind
    whatever sounds and, while the clock is trusted, never starts in quiet hours.

    `since` is when it was accepted (wall time); it only orders sources of equal
    priority (first come, first played), so an untrusted clock there is harmless.
    """

    kind: SourceKind
    id: str
    priority: int
    since: datetime

    @property
    def key(self) -> str:
        return source_key(self.kind, self.id)


@dataclass(frozen=True)
class StartOccurrence:
    """Start playing occurrence `key` of `item_id` at `offset_s` seconds into its media.

    `resumed` is true when this continues an occurrence that was pre-empted
    (its proof will then end `resumed` if it runs to the end).
    """

    key: str
    item_id: str
    scheduled_at: datetime
    priority: int
    offset_s: float
    resumed: bool
    window_end: datetime
    resume: ResumeMode


@dataclass(frozen=True)
class StartSource:
    """Start (or start again, after a pre-emption) an alert or a live session."""

    key: str
    kind: SourceKind
    id: str
    priority: int


Start = StartOccurrence | StartSource


@dataclass(frozen=True)
class Stop:
    """Stop what plays under `key` now.

    `outcome` is what the proof of the segment that ends here says: `preempted`
    (something higher began, or quiet hours began: `reason` = `quiet_hours`) or
    `cancelled` (its schedule item was removed, or its alert/live ended).
    """

    key: str
    outcome: Literal["preempted", "cancelled"]
    reason: str | None = None


@dataclass(frozen=True)
class SkipProof:
    """A proof to write for an occurrence decided without sound (outcome `skipped`).

    `started_at`/`ended_at` of the proof are null. `proof_id` is deterministic so
    a proof re-sent after a crash carries the same `id` (PROTOCOL §6.4).
    """

    key: str
    item_id: str
    scheduled_at: datetime
    reason: SkipReason
    decided_at: datetime
    outcome: Literal["skipped"] = "skipped"

    @property
    def proof_id(self) -> str:
        return f"{self.key}#skipped"


@dataclass(frozen=True)
class Decision:
    """What the runner does now, in this order: `stop`, then `start`, then write `proofs`.

    `wake_at` is the next instant at which the plan could change without any event
    (an occurrence begins, a waiting one's window ends, quiet hours begin); None
    means only an event (engine, command, clock trust or jump) can change it.
    """

    stop: Stop | None = None
    start: Start | None = None
    proofs: tuple[SkipProof, ...] = ()
    wake_at: datetime | None = None
