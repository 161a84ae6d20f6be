"""Small durable key/value state: master volume, current schedule and version,
the clock's lower bound (largest verified iat), heartbeat seq.

Values are stored as JSON text, so what comes back from `get` is what
`json.loads` makes of it (tuples come back as lists). `set_many` writes several
keys in one transaction: after a power cut either all of them changed or none
(e.g. schedule JSON together with its version).

Start-up never trusts a stored value blindly: one that is not JSON, or that its
reader's check refuses (`get_valid`), is moved aside under `aside.<key>.<unix time>`
(kept for diagnosis, never read again by the agent) and the default is used instead.
`quarantined()` hands the moves to whoever raises the events (agent/storagewatch.py),
so this module stays usable from any thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agent.db import Database

log = logging.getLogger(__name__)

ASIDE_PREFIX = "aside."
_T = TypeVar("_T")


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

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._aside: list[tuple[str, str, str]] = []
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
        if text is None:
            return default
        try:
            return json.loads(text)
        except ValueError as exc:
            self.move_aside(key, f"not JSON: {exc}")
            return default

    def get_valid(self, key: str, check: Callable[[Any], _T], default: _T) -> _T:
        """`check(value)` of the stored value, or `default` when absent; a value `check`
        refuses (raises) is moved aside and `default` returned."""
        value = self.get(key)
        if value is None:
            return default
        try:
            return check(value)
        except Exception as exc:  # any refusal: the agent must start regardless
            self.move_aside(key, f"{type(exc).__name__}: {exc}")
            return default

    def move_aside(self, key: str, reason: str) -> str | None:
        """Keep the raw stored value under `aside.<key>.<time>` and forget `key`; returns
        the new key (None if `key` was not set)."""
        _check_key(key)
        aside = f"{ASIDE_PREFIX}{key}.{int(self._clock())}"
        with self._db.write() as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (aside, json.dumps({"raw": str(row[0]), "reason": reason})),
            )
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))
        self._read[key] = None
        self._read.pop(aside, None)
        log.error("stored %s unusable (%s); moved aside to %s", key, reason, aside)
        with self._lock:
            self._aside.append((key, reason, aside))
        return aside

    def quarantined(self) -> list[tuple[str, str, str]]:
        """(key, reason, aside key) of every value moved aside since the last call."""
        with self._lock:
            moved, self._aside = self._aside, []
        return moved

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
