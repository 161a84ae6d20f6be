"""Durable queue of everything the province must eventually see (PROTOCOL §6.3-§6.5).

Acks, events and proofs are `put` here before any attempt to publish them; the
publisher reads `pending()`, publishes, and `delete`s a record only after the
broker acknowledged it (QoS 1 PUBACK). A crash between publish and delete sends
the record again after restart: duplicates are allowed (§6.4), loss is not.

Quota policy (the outbox may fill during days offline):
- The quota counts, per record, payload + topic + RECORD_OVERHEAD bytes; it is a
  bound on what the outbox holds, not on the file size.
- When a put would exceed the quota, the oldest non-proof records (acks, events,
  other) are dropped first; `PutResult.dropped` says how many, so the caller can
  raise an `outbox_full` event (rate-limit it: that event is itself a put).
- Proofs are never dropped while the outbox is on disk. A proof put always
  succeeds, even past the quota.
- While the database lives in memory (a full or read-only card, agent/db.py), the
  quota bounds proofs too: when proofs alone exceed it, the oldest proofs are
  dropped (`PutResult.dropped_proofs`), so days on a full card cannot exhaust RAM.
  Everything kept is written to the file when the card takes writes again.
- A non-proof put that cannot fit even after every other non-proof was dropped
  (proofs alone fill the quota, or the record is bigger than the quota) drops
  itself: nothing is stored, nothing else is dropped, and the result is
  `PutResult(id=0, dropped=1)` (`stored` is False). Throwing away older acks
  would not make room, so they are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, cast

from agent.db import Database, Tx

OutboxKind = Literal["ack", "event", "proof", "other"]
KINDS: tuple[OutboxKind, ...] = ("ack", "event", "proof", "other")

# Per-record bookkeeping charged against the quota (row header, index entry,
# page slack), so that a flood of tiny events is bounded too.
RECORD_OVERHEAD = 64


@dataclass(frozen=True)
class Record:
    id: int
    kind: OutboxKind
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_at: float  # Unix seconds from the outbox's clock, informational


@dataclass(frozen=True)
class PutResult:
    id: int  # 0 when the record itself was dropped (see module docstring)
    dropped: int  # records lost to make room, including this one if not stored
    dropped_proofs: int = 0  # proofs among them (only while the database is in memory)

    @property
    def stored(self) -> bool:
        return self.id != 0


def record_size(topic: str, payload: bytes) -> int:
    """What one record counts against the quota."""
    return len(payload) + len(topic.encode("utf-8")) + RECORD_OVERHEAD


class Outbox:
    """The durable outgoing queue in `state.db`. Thread-safe through the Database."""

    def __init__(
        self,
        db: Database,
        quota_bytes: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(quota_bytes, bool) or not isinstance(quota_bytes, int) or quota_bytes <= 0:
            raise ValueError(f"outbox quota_bytes must be a positive int, got {quota_bytes!r}")
        self._db = db
        self._quota = quota_bytes
        self._clock = clock

    @property
    def quota_bytes(self) -> int:
        return self._quota

    def put(
        self,
        kind: str,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> PutResult:
        """Store one record durably; when this returns, it survives kill -9 and power cuts.

        Raises ValueError on bad arguments, StorageFull when the disk is full.
        """
        if kind not in KINDS:
            raise ValueError(f"outbox kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"outbox topic must be a non-empty str, got {topic!r}")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise ValueError(f"outbox payload must be bytes, got {type(payload).__name__}")
        if isinstance(qos, bool) or qos not in (0, 1, 2):
            raise ValueError(f"outbox qos must be 0, 1 or 2, got {qos!r}")
        if not isinstance(retain, bool):
            raise ValueError(f"outbox retain must be a bool, got {retain!r}")
        data = bytes(payload)
        size = record_size(topic, data)
        with self._db.write() as conn:
            total, proof_bytes = conn.execute(
                "SELECT bytes, proof_bytes FROM outbox_stats WHERE id = 1"
            ).fetchone()
            if kind != "proof" and proof_bytes + size > self._quota:
                return PutResult(id=0, dropped=1)
            dropped = dropped_proofs = 0
            excess = total + size - self._quota
            if excess > 0:
                dropped, freed = _drop_oldest(conn, excess, proofs=False)
                if freed < excess and not self._db.durable:
                    dropped_proofs, _ = _drop_oldest(conn, excess - freed, proofs=True)
                    dropped += dropped_proofs
            cur = conn.execute(
                "INSERT INTO outbox (kind, topic, payload, qos, retain, created_at, size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, topic, data, qos, int(retain), float(self._clock()), size),
            )
            new_id = cur.lastrowid
        assert new_id is not None
        return PutResult(id=int(new_id), dropped=dropped, dropped_proofs=dropped_proofs)

    def pending(self, limit: int = 100, after_id: int = 0) -> list[Record]:
        """Up to `limit` records with id > `after_id`, oldest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"pending limit must be a positive int, got {limit!r}")
        if isinstance(after_id, bool) or not isinstance(after_id, int):
            raise ValueError(f"pending after_id must be an int, got {after_id!r}")
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT id, kind, topic, payload, qos, retain, created_at FROM outbox"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [
            Record(
                id=int(r[0]),
                kind=cast(OutboxKind, r[1]),
                topic=str(r[2]),
                payload=bytes(r[3]),
                qos=int(r[4]),
                retain=bool(r[5]),
                created_at=float(r[6]),
            )
            for r in rows
        ]

    def delete(self, record_id: int) -> bool:
        """Forget a record the broker acknowledged. False if it was already gone."""
        return self.delete_many([record_id]) == 1

    def delete_many(self, record_ids: Iterable[int]) -> int:
        """Forget several acknowledged records in one commit (one fsync); returns how many."""
        ids = [int(i) for i in record_ids]
        if not ids:
            return 0
        with self._db.write() as conn:
            removed = 0
            for rid in ids:
                removed += conn.execute("DELETE FROM outbox WHERE id = ?", (rid,)).rowcount
        return removed

    def count(self) -> int:
        with self._db.read() as conn:
            row = conn.execute("SELECT records FROM outbox_stats WHERE id = 1").fetchone()
        return int(row[0])

    def count_by_kind(self) -> dict[str, int]:
        """Records waiting, per kind (every kind present, zero when none)."""
        counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        with self._db.read() as conn:
            for kind, n in conn.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind"):
                counts[str(kind)] = int(n)
        return counts

    def size_bytes(self) -> int:
        """Bytes counted against the quota (see record_size)."""
        with self._db.read() as conn:
            row = conn.execute("SELECT bytes FROM outbox_stats WHERE id = 1").fetchone()
        return int(row[0])


def _drop_oldest(conn: Tx, need: int, *, proofs: bool) -> tuple[int, int]:
    """Delete the oldest non-proof records (or, `proofs=True`, the oldest proofs) until
    at least `need` bytes are freed; returns (records dropped, bytes freed).

    Stops early when none of that kind is left (a proof put then goes over quota).
    Runs inside the caller's write transaction.
    """
    which = "kind = 'proof'" if proofs else "kind != 'proof'"
    freed = 0
    last_id: int | None = None
    count = 0
    while freed < need:
        # Read in small batches and close each cursor before the DELETE: a
        # statement left open on the connection while deleting is undefined.
        batch = conn.execute(
            f"SELECT id, size FROM outbox WHERE {which} AND id > ? ORDER BY id LIMIT 64",
            (last_id or 0,),
        ).fetchall()
        if not batch:
            break
        for rid, size in batch:
            freed += int(size)
            last_id = int(rid)
            count += 1
            if freed >= need:
                break
    if last_id is None:
        return 0, 0
    conn.execute(f"DELETE FROM outbox WHERE {which} AND id <= ?", (last_id,))
    return count, freed
