"""From one device message to the rows the console stores (PROTOCOL §6). Pure.

Everything from the wire is validated and bounded here, before it reaches the
database: a message that cannot be understood is reported (and, for proofs,
kept apart as a suspect) but never raises. A proof becomes evidence only when its
signature verifies with the device's enrolled key and its fields are sound.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from agent.central.acl import DEVICE_REPORTS, ID_RE
from agent.central.proofs import check_proof
from agent.central.store import BucketHit, Row, digest
from agent.timeutil import parse_rfc3339

MAX_PAYLOAD = 64 * 1024  # far above any genuine report; bounds what one message can store
OUTCOMES = frozenset({"completed", "preempted", "resumed", "skipped", "failed", "cancelled"})
ID_FIELDS = {"audio": "item_id", "slides": "item_id", "alert": "alert_id", "live": "session_id"}
ACK_STATUSES = frozenset({"accepted", "rejected", "duplicate", "stale", "done", "failed"})
LEVELS = frozenset({"info", "warning", "error"})


@dataclass
class Parsed:
    """What one message gives: rows to store, heartbeat slots, and a problem line."""

    rows: list[Row] = field(default_factory=list)
    hits: list[BucketHit] = field(default_factory=list)
    problem: str | None = None


@dataclass(frozen=True)
class IngestContext:
    keys: Mapping[str, bytes]  # enrolled proof keys by device id
    tz: tzinfo  # the province's zone: what a "day" is
    heartbeat_s: int


def split_topic(topic: str) -> tuple[str, str] | None:
    parts = topic.split("/")
    if (len(parts) != 5 or parts[:3] != ["tcs", "v1", "dev"] or parts[4] not in DEVICE_REPORTS
            or not ID_RE.fullmatch(parts[3])):
        return None
    return parts[3], parts[4]


def _ms(value: Any) -> int | None:
    """RFC 3339 text to epoch milliseconds; None for null or anything else."""
    if not isinstance(value, str):
        return None
    try:
        return int(parse_rfc3339(value).timestamp() * 1000)
    except (ValueError, OverflowError):
        return None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**62:
        return None
    return value


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if -1e6 < value < 1e6 else None


def bucket_hit(device: str, received_ms: int, ctx: IngestContext) -> BucketHit:
    local = datetime.fromtimestamp(received_ms / 1000, ctx.tz)
    delta = local.utcoffset()
    offset = int(delta.total_seconds()) if delta is not None else 0
    bucket = (received_ms // 1000 + offset) // ctx.heartbeat_s
    return BucketHit(device, local.date(), bucket, 1)


def _suspect(device: str, verdict: str, reason: str, token: str, received_ms: int,
             proof_id: Any = None) -> Row:
    return Row("suspect_proofs", {
        "device": device, "verdict": verdict, "reason": reason[:300],
        "proof_id": _text(proof_id, 200), "token_sha256": digest(token.encode()),
        "received_ms": received_ms, "token": token,
    })


def _proof_fields(claims: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    pid = claims.get("id")
    if not isinstance(pid, str) or not 0 < len(pid) <= 200:
        return None, "id missing or not a string of 1-200 characters"
    kind = claims.get("kind")
    if kind not in ID_FIELDS:
        return None, f"kind {kind!r} is not audio|slides|alert|live"
    subject = claims.get(ID_FIELDS[kind])
    if not isinstance(subject, str) or not 0 < len(subject) <= 200:
        return None, f"{ID_FIELDS[kind]} missing for kind {kind}"
    outcome = claims.get("outcome")
    if outcome not in OUTCOMES:
        return None, f"outcome {outcome!r} unknown"
    played = _int(claims.get("played_ms"))
    if played is None or played < 0:
        return None, "played_ms missing or negative"
    started, ended = _ms(claims.get("started_at")), _ms(claims.get("ended_at"))
    if played > 0 and started is None:
        return None, "played_ms > 0 without started_at"
    return {
        "proof_id": pid, "kind": kind, "subject_id": subject, "outcome": outcome,
        "reason": _text(claims.get("reason"), 64),
        "scheduled_ms": _ms(claims.get("scheduled_at")), "started_ms": started,
        "ended_ms": ended, "played_ms": played, "volume": _int(claims.get("volume")),
        "level_dbfs": _float(claims.get("level_dbfs")),
        "heard_dbfs": _float(claims.get("heard_dbfs")),
    }, ""


def _proof(device: str, payload: bytes, received_ms: int, ctx: IngestContext) -> Parsed:
    token = payload.decode("ascii", errors="replace").strip()
    check = check_proof(token, device, ctx.keys)
    claims = check.claims or {}
    if check.verdict != "VERIFIED":
        verdict = "UNKNOWN" if check.verdict == "UNKNOWN DEVICE" else "FORGED"
        return Parsed([_suspect(device, verdict, check.reason, token, received_ms,
                                claims.get("id"))],
                      problem=f"proof from {device} {check.verdict}: {check.reason}")
    fields, why = _proof_fields(claims)
    if fields is None:
        return Parsed([_suspect(device, "MALFORMED", why, token, received_ms, claims.get("id"))],
                      problem=f"proof from {device} malformed: {why}")
    at = fields["scheduled_ms"] or fields["started_ms"] or received_ms
    values = {"device": device, **fields, "at_ms": at, "received_ms": received_ms,
              "token": token}
    return Parsed([Row("proofs", values)])


def _object(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def parse(topic: str, payload: bytes, received_ms: int, ctx: IngestContext) -> Parsed:
    """Rows for one message received at `received_ms` (the console's clock)."""
    where = split_topic(topic)
    if where is None:
        return Parsed(problem=f"message on unexpected topic {topic[:200]!r} ignored")
    device, leaf = where
    if len(payload) > MAX_PAYLOAD:
        return Parsed(problem=f"{leaf} from {device}: {len(payload)} bytes, over "
                              f"{MAX_PAYLOAD}; ignored")
    if leaf == "proof":
        return _proof(device, payload, received_ms, ctx)
    key = digest(payload)
    if leaf == "state" and not payload:
        return Parsed([Row("states", {"device": device, "online": None, "at_ms": None,
                                      "received_ms": received_ms, "agent_version": None,
                                      "schedule_version": None,
                                      "digest": key})])
    data = _object(payload)
    if data is None:
        return Parsed(problem=f"{leaf} from {device} is not a JSON object; ignored")
    at = _ms(data.get("at"))
    if leaf == "hb":
        playing = data.get("playing")
        return Parsed([Row("heartbeats", {
            "device": device, "received_ms": received_ms, "at_ms": at,
            "seq": _int(data.get("seq")), "schedule_version": _int(data.get("schedule_version")),
            "playing": _text(playing.get("item_id"), 200) if isinstance(playing, dict) else None,
            "alert_id": _text(data.get("alert_id"), 200), "volume": _int(data.get("volume")),
            "outbox": _int(data.get("outbox")),
        })], [bucket_hit(device, received_ms, ctx)])
    if leaf == "state":
        online = data.get("online")
        # A retained state is re-sent to every new subscriber: its digest dedups it.
        return Parsed([Row("states", {
            "device": device, "online": online if isinstance(online, bool) else None,
            "at_ms": at, "received_ms": received_ms,
            "agent_version": _text(data.get("agent_version"), 64),
            "schedule_version": _int(data.get("schedule_version")), "digest": key,
        })])
    if leaf == "ack":
        status = data.get("status")
        if status not in ACK_STATUSES:
            return Parsed(problem=f"ack from {device} has status {status!r}; ignored")
        return Parsed([Row("acks", {
            "device": device, "jti": _text(data.get("jti"), 64), "cmd": _text(data.get("cmd"), 32),
            "status": status, "code": _text(data.get("code"), 64),
            "detail": _text(data.get("detail"), 500), "at_ms": at, "received_ms": received_ms,
            "digest": key,
        })])
    level = data.get("level")
    code = _text(data.get("code"), 64)
    if level not in LEVELS or not code:
        return Parsed(problem=f"event from {device} lacks a level or code; ignored")
    return Parsed([Row("events", {
        "device": device, "level": level, "code": code, "detail": _text(data.get("detail"), 500),
        "at_ms": at, "received_ms": received_ms, "digest": key,
    })])
