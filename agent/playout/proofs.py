"""§6.4 proof records, built from what the engine measured (pure functions).

A record is a plain dict; the reporter signs it with the device key and puts it in
the durable outbox. Times come from the engine's Voice (first sample at the DAC,
last sample out), never from when play() was called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, Literal

from agent.scheduler import SkipProof
from agent.timeutil import rfc3339_ms

ProofKind = Literal["audio", "slides", "alert", "live"]
IdField = Literal["item_id", "alert_id", "session_id"]

ID_FIELD: dict[ProofKind, IdField] = {
    "audio": "item_id",
    "slides": "item_id",
    "alert": "alert_id",
    "live": "session_id",
}


def _ts(wall: float | None, tz: tzinfo) -> str | None:
    return None if wall is None else rfc3339_ms(wall, tz)


def segment_proof(
    *,
    proof_id: str,
    kind: ProofKind,
    subject_id: str,
    tz: tzinfo,
    outcome: str,
    media_sha256: Sequence[str] = (),
    scheduled_at: datetime | None = None,
    started_wall: float | None = None,
    ended_wall: float | None = None,
    played_ms: int = 0,
    reason: str | None = None,
    volume: int | None = None,
    level_dbfs: float | None = None,
    heard_dbfs: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One played (or failed) segment. `started_wall` is the first sample at the DAC;
    when nothing sounded both times are null (§6.4)."""
    record: dict[str, Any] = {
        "id": proof_id,
        ID_FIELD[kind]: subject_id,
        "kind": kind,
        "media_sha256": list(media_sha256),
        "scheduled_at": None if scheduled_at is None else rfc3339_ms(scheduled_at.timestamp(), tz),
        "started_at": _ts(started_wall, tz),
        "ended_at": _ts(ended_wall if started_wall is not None else None, tz),
        "played_ms": played_ms if started_wall is not None else 0,
        "outcome": outcome,
        "reason": reason,
        "volume": volume,
        "level_dbfs": level_dbfs,
    }
    if heard_dbfs is not None:
        record["heard_dbfs"] = heard_dbfs
    for k, v in (extra or {}).items():  # output-specific fields (a board's frame hash)
        record.setdefault(k, v)
    return record


def skip_proof(
    skip: SkipProof,
    tz: tzinfo,
    *,
    media_sha256: Sequence[str] = (),
    volume: int | None = None,
    proof_id: str | None = None,
    kind: ProofKind = "audio",
) -> dict[str, Any]:
    """An occurrence the planner decided without sound (`skipped`, with its reason)."""
    return segment_proof(
        proof_id=proof_id or skip.proof_id,
        kind=kind,
        subject_id=skip.item_id,
        tz=tz,
        outcome="skipped",
        media_sha256=media_sha256,
        scheduled_at=skip.scheduled_at,
        reason=skip.reason,
        volume=volume,
    )
