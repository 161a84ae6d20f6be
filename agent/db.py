"""The agent's one SQLite file (`state.db`): open it safely, migrate it, lock it.

Why SQLite: the device runs on an SD card that loses power without warning, and
the province must never lose a proof of play, an ack or an event (PROTOCOL §3,
§6.4). SQLite in WAL mode with `synchronous=FULL` makes every committed
transaction survive a power cut, and one file holds outbox, inbox journal,
replay store and key/value state so that one transaction can touch several.

Why a corrupt file is moved aside rather than repaired: an SD card that returns
garbage cannot be trusted to hold a half-repaired file either, and an agent that
refuses to start because of its own state file is a device that stays silent
during an emergency. The file is kept (`state.db.corrupt-<UTC timestamp>`) for
forensics, a fresh one is created, and `Database.recovered_from` tells the
caller so it can raise an event. Open never crash-loops on corruption.

Threading: one connection (`check_same_thread=False`) guarded by a re-entrant
lock. The asyncio agent calls in from the loop or through `asyncio.to_thread`;
every call is serialised. A commit with `synchronous=FULL` costs an fsync
(milliseconds to tens of milliseconds on an SD card), so callers on the event
loop should prefer `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from agent.fsutil import fsync_dir

# Primary SQLite result codes (the low byte of an extended code). Spelled out
# here rather than taken from the sqlite3 module so the meaning is visible.
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26

BUSY_TIMEOUT_MS = 5000
# After a checkpoint the WAL is truncated to this size, so a burst of puts
# does not leave a large -wal file eating the card.
_JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024

# Forward migrations: MIGRATIONS[i] takes a file from user_version i to i + 1.
# Never edit a released entry; append a new one. Each runs in one transaction
# together with the user_version bump, so a power cut mid-migration leaves the
# old version intact and the migration simply runs again.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # Outbox (agent/outbox.py). AUTOINCREMENT: ids are never reused, so a
        # publisher holding an id for an in-flight PUBACK can never delete a
        # newer record that happened to get the same id.
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('ack', 'event', 'proof', 'other')),
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
            retain INTEGER NOT NULL CHECK (retain IN (0, 1)),
            created_at REAL NOT NULL,
            size INTEGER NOT NULL
        )""",
        # Oldest-first eviction only ever looks at non-proofs.
        "CREATE INDEX outbox_nonproof ON outbox (id) WHERE kind != 'proof'",
        # Running totals kept by triggers inside the same transaction as the
        # insert/delete, so the quota check is O(1) and can never drift.
        """CREATE TABLE outbox_stats (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            records INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            proof_bytes INTEGER NOT NULL
        )""",
        "INSERT INTO outbox_stats (id, records, bytes, proof_bytes) VALUES (1, 0, 0, 0)",
        """CREATE TRIGGER outbox_stats_ins AFTER INSERT ON outbox BEGIN
            UPDATE outbox_stats SET records = records + 1, bytes = bytes + NEW.size,
                proof_bytes = proof_bytes + (CASE WHEN NEW.kind = 'proof' THEN NEW.size ELSE 0 END)
            WHERE id = 1;
        END""",
        """CREATE TRIGGER outbox_stats_del AFTER DELETE ON outbox BEGIN
            UPDATE outbox_stats SET records = records - 1, bytes = bytes - OLD.size,
                proof_bytes = proof_bytes - (CASE WHEN OLD.kind = 'proof' THEN OLD.size ELSE 0 END)
            WHERE id = 1;
        END""",
        # Inbox journal (agent/inbox.py). `digest` makes a broker redelivery of
        # the same message find the entry already journalled.
        """CREATE TABLE inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            digest BLOB NOT NULL UNIQUE,
            received_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        )""",
        # Replay store (agent/replay.py): accepted jti -> token digest, until exp.
        """CREATE TABLE replay (
            jti TEXT PRIMARY KEY,
            digest TEXT NOT NULL,
            exp INTEGER NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX replay_exp ON replay (exp)",
        # Key/value state (agent/state.py), values as JSON text.
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    ),
)


class StorageError(Exception):
    """The state file could not be read or written; the message says why."""


class StorageFull(StorageError):
    """The disk (or SQLite's page limit) is full: nothing was written."""


class StorageCorrupt(StorageError):
    """SQLite found the file corrupt while in use; the next open moves it aside."""


def schema_version() -> int:
    """The user_version this agent creates and understands."""
    return len(MIGRATIONS)


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _is_corruption(exc: sqlite3.Error) -> bool:
    return _primary_code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _translate(exc: sqlite3.Error, path: Path) -> StorageError:
    code = _primary_code(exc)
    if code == _SQLITE_FULL or "database or disk is full" in str(exc):
        return StorageFull(f"{path}: disk full, nothing written ({exc})")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StorageCorrupt(f"{path}: database file is corrupt ({exc})")
    return StorageError(f"{path}: {exc}")


def _is_bug(exc: BaseException) -> bool:
    """Errors that mean the calling code is wrong, not the disk: never disguised."""
    return isinstance(exc, sqlite3.ProgrammingError | sqlite3.IntegrityError)


def _suspect_marker(path: Path) -> Path:
    return path.with_name(path.name + ".suspect")


class Database:
    """One open `state.db`. Create with `open_db`; use `read()` / `write()`.

    `recovered_from` is the path the corrupt predecessor was moved to when this
    open had to start afresh (the caller raises an event), else None;
    `recovery_reason` says what was wrong with it.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        recovered_from: Path | None = None,
        recovery_reason: str | None = None,
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self.path = path
        self.recovered_from = recovered_from
        self.recovery_reason = recovery_reason

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"{self.path}: database is closed")
        return self._conn

    def _fail(self, exc: sqlite3.Error) -> StorageError:
        err = _translate(exc, self.path)
        if isinstance(err, StorageCorrupt):
            # Remember the verdict on disk: quick_check at the next open may
            # miss what SQLite tripped over here, and a restart that hits the
            # same corruption again and again would be a crash loop.
            with contextlib.suppress(OSError):
                marker = _suspect_marker(self.path)
                marker.write_text(str(exc) + "\n")
                fsync_dir(marker.parent)
        return err

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT), durable when the block ends.

        Any exception in the block rolls everything back. SQLite errors come out
        as StorageFull / StorageCorrupt / StorageError.
        """
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                if _is_bug(exc):
                    raise
                raise self._fail(exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and not _is_bug(exc):
                    raise self._fail(exc) from exc
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (one snapshot for every query in the block)."""
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN")
                yield conn
            except sqlite3.Error as exc:
                if _is_bug(exc):
                    raise
                raise self._fail(exc) from exc
            finally:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")

    @property
    def schema_version(self) -> int:
        with self.read() as conn:
            row = conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Corrupt(Exception):
    """Internal: the file failed its check at open."""


def _connect_checked(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """Connect, verify with quick_check, then switch on WAL and FULL sync.

    Raises _Corrupt if the file is damaged, StorageError for anything else.
    """
    try:
        conn = sqlite3.connect(
            str(path),
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # guarded by Database._lock
        )
    except sqlite3.Error as exc:
        raise _translate(exc, path) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        # quick_check first: it is the first thing that reads every page's
        # structure, and it must run before anything writes to the file.
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            detail = "; ".join(str(r[0]) for r in rows[:3])
            raise _Corrupt(f"quick_check: {detail}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise StorageError(f"{path}: cannot use WAL journal (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
        return conn
    except _Corrupt:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        if _is_corruption(exc):
            raise _Corrupt(str(exc)) from exc
        raise _translate(exc, path) from exc
    except BaseException:
        conn.close()
        raise


def _move_aside(path: Path, now: float) -> Path:
    """Rename the damaged file (and its WAL, kept beside it for forensics)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        if path.exists():
            os.replace(path, target)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            os.replace(wal, target.with_name(target.name + "-wal"))
        shm = path.with_name(path.name + "-shm")
        # The shared-memory index is rebuilt from the WAL; it holds no data.
        shm.unlink(missing_ok=True)
        _suspect_marker(path).unlink(missing_ok=True)
        fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"{path}: corrupt, and could not be moved aside: {exc}") from exc
    return target


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    migrations = MIGRATIONS  # read at call time so tests can add one
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > len(migrations):
        raise StorageError(
            f"{path}: schema version {current} is newer than this agent knows "
            f"({len(migrations)}); it was written by a newer tcs-agent"
        )
    for version in range(current, len(migrations)):
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in migrations[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise StorageError(
                f"{path}: migration to schema version {version + 1} failed: {exc}"
            ) from exc


def open_db(
    path: Path,
    *,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    clock: Callable[[], float] = time.time,
) -> Database:
    """Open (creating if needed) the state file at `path`, e.g. `<storage dir>/state.db`.

    A corrupt file is moved aside and replaced by an empty one; the returned
    Database then has `recovered_from` set. Raises StorageFull if the disk is
    too full to create or migrate the file, StorageError for other failures
    (unreadable folder, schema from a newer agent).
    """
    path = Path(path)
    if path.is_dir():
        raise StorageError(f"{path}: is a directory, expected the SQLite state file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{path.parent}: cannot create storage folder: {exc}") from exc
    recovered_from: Path | None = None
    reason: str | None = None
    marker = _suspect_marker(path)
    if marker.exists():
        try:
            reason = "found corrupt while in use: " + marker.read_text(errors="replace").strip()
        except OSError:
            reason = "found corrupt while in use"
        recovered_from = _move_aside(path, clock())
    is_new = not path.exists()
    try:
        conn = _connect_checked(path, busy_timeout_ms)
    except _Corrupt as corrupt:
        reason = str(corrupt)
        recovered_from = _move_aside(path, clock())
        is_new = True
        try:
            conn = _connect_checked(path, busy_timeout_ms)
        except _Corrupt as again:
            raise StorageError(f"{path}: fresh file reported corrupt: {again}") from again
    try:
        _migrate(conn, path)
        if is_new:
            # SQLite syncs the directory for its journals but not for a newly
            # created main file; without this a power cut could lose the name.
            fsync_dir(path.parent)
    except (StorageError, OSError) as exc:
        conn.close()
        if isinstance(exc, StorageError) and "disk is full" in str(exc):
            raise StorageFull(str(exc)) from exc
        if isinstance(exc, OSError):
            raise StorageError(f"{path}: {exc}") from exc
        raise
    return Database(conn, path, recovered_from=recovered_from, recovery_reason=reason)
