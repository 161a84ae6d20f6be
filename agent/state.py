"""Small durable key/value state: master volume, current schedule and version,
the clock's lower bound (largest verified iat), heartbeat seq.

Values are stored as JSON text, so what comes back from `get` is what
`json.loads` makes of it (tuples come back as lists). `set_many` writes several
keys in one transaction: after a power cut either all of them changed or none
(e.g. schedule JSON together with its version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent.db import Database


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"state key must be a non-empty str, got {key!r}")
    return key


def _encode(key: str, value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"state value for {key!r} is not JSON-serialisable: {exc}") from exc


class StateStore:
    """Durable key/value store in `state.db`.

    Reads are served from memory after the first (this process is the only writer):
    `get` is called on the event loop (clock floor, volume, schedule version) and
    must not wait behind another thread's write and fsync.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._read: dict[str, str | None] = {}  # key -> stored JSON text (None: absent)

    def get(self, key: str, default: Any = None) -> Any:
        _check_key(key)
        if key in self._read:
            text = self._read[key]
        else:
            with self._db.read() as conn:
                row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            text = None if row is None else str(row[0])
            self._read[key] = text
        return default if text is None else json.loads(text)

    def set(self, key: str, value: Any) -> None:
        """Store `value` (JSON-serialisable) under `key`; durable when this returns."""
        self.set_many({key: value})

    def set_many(self, items: Mapping[str, Any]) -> None:
        """Store every key in one transaction: all or nothing."""
        encoded = [(_check_key(k), _encode(k, v)) for k, v in items.items()]
        if not encoded:
            return
        with self._db.write() as conn:
            conn.executemany(
                "INSERT INTO kv (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                encoded,
            )
        self._read.update(encoded)  # only once durable

    def delete(self, key: str) -> bool:
        """Remove `key`; False if it was not set."""
        _check_key(key)
        with self._db.write() as conn:
            n = conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount
        self._read[key] = None
        return n == 1

    def keys(self) -> list[str]:
        with self._db.read() as conn:
            return [str(r[0]) for r in conn.execute("SELECT key FROM kv ORDER BY key")]
