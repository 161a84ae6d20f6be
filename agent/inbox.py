"""Journal of received commands, written before the broker is told we have them.

The agent acknowledges MQTT deliveries manually: a QoS 1 command is `put` here
(durably) first, and only then does the broker get its PUBACK. The entry is
marked `done` after the command was acted on and its ack was put in the outbox.
So a `kill -9` or power cut at any point either leaves the entry here (handled
again after restart) or leaves the broker without a PUBACK (it redelivers).

Redelivery after a crash brings the same topic + payload again: `put` then
returns the entry already journalled instead of adding a second one. A command
redelivered after it was done becomes a new entry; the replay store (jti) acks
it `duplicate` without acting twice.

`mark_attempt` counts how often processing of an entry was started, so that a
command that crashes the agent every time can be failed after a few tries
instead of crash-looping the device.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.db import Database


@dataclass(frozen=True)
class InboxEntry:
    id: int
    topic: str
    payload: bytes
    received_at: float  # Unix seconds from the inbox's clock
    attempts: int  # how often processing was started (mark_attempt)


def _digest(topic: str, payload: bytes) -> bytes:
    # Length-prefixed so that no topic/payload split can collide with another.
    t = topic.encode("utf-8")
    return hashlib.sha256(len(t).to_bytes(4, "big") + t + payload).digest()


class Inbox:
    """The command journal in `state.db`. Thread-safe through the Database."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    @property
    def durable(self) -> bool:
        """Whether entries survive a power cut (False while the database is in memory)."""
        return self._db.durable

    def put(self, topic: str, payload: bytes) -> int:
        """Journal a received message; returns its id. Durable when this returns.

        The same topic + payload still pending returns the existing id.
        """
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"inbox topic must be a non-empty str, got {topic!r}")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise ValueError(f"inbox payload must be bytes, got {type(payload).__name__}")
        data = bytes(payload)
        digest = _digest(topic, data)
        with self._db.write() as conn:
            row = conn.execute("SELECT id FROM inbox WHERE digest = ?", (digest,)).fetchone()
            if row is not None:
                return int(row[0])
            cur = conn.execute(
                "INSERT INTO inbox (topic, payload, digest, received_at) VALUES (?, ?, ?, ?)",
                (topic, data, digest, float(self._clock())),
            )
            new_id = cur.lastrowid
        assert new_id is not None
        return int(new_id)

    def pending(self) -> list[InboxEntry]:
        """Entries not yet done, in the order they were received."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT id, topic, payload, received_at, attempts FROM inbox ORDER BY id"
            ).fetchall()
        return [
            InboxEntry(
                id=int(r[0]),
                topic=str(r[1]),
                payload=bytes(r[2]),
                received_at=float(r[3]),
                attempts=int(r[4]),
            )
            for r in rows
        ]

    def mark_attempt(self, entry_id: int) -> int:
        """Record that processing of `entry_id` starts now; returns the attempt count.

        Raises KeyError if there is no such pending entry.
        """
        with self._db.write() as conn:
            conn.execute("UPDATE inbox SET attempts = attempts + 1 WHERE id = ?", (entry_id,))
            row = conn.execute("SELECT attempts FROM inbox WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise KeyError(f"no pending inbox entry {entry_id}")
        return int(row[0])

    def done(self, entry_id: int) -> bool:
        """The command was acted on and its ack is in the outbox: forget it.

        False if it was not pending (already done).
        """
        with self._db.write() as conn:
            n = conn.execute("DELETE FROM inbox WHERE id = ?", (entry_id,)).rowcount
        return n == 1

    def count(self) -> int:
        with self._db.read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM inbox").fetchone()
        return int(row[0])
