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

Why a full or read-only disk falls back to memory rather than failing: the device
exists to sound the flood warning, and a card that filled up (or that the kernel
remounted read-only after an I/O error) must not stop it obeying signed commands.
When a write fails for lack of space or because the file system refuses writes,
the whole state is copied into an in-memory SQLite database (SQLite's backup API
reads the file; reading needs no space) and the transaction that failed is replayed
there, so the caller never sees the fault. `degraded` then says why ("full",
"readonly", "error"); `try_restore()` (called periodically by agent/storagewatch.py)
copies the in-memory state back over the file once it can be written again. What
was only in memory is lost to a crash or power cut: that is the documented price
of serving on. A state folder that cannot be opened for writing at start is read
(read-only, or as an immutable file) into memory the same way.

Threading: one connection (`check_same_thread=False`) guarded by a re-entrant
lock. The asyncio agent calls in from the loop or through `asyncio.to_thread`;
every call is serialised. A commit with `synchronous=FULL` costs an fsync
(milliseconds to tens of milliseconds on an SD card), so callers on the event
loop should prefer `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from agent.fsutil import fsync_dir, read_only_medium

log = logging.getLogger(__name__)

# Primary SQLite result codes (the low byte of an extended code). Spelled out
# here rather than taken from the sqlite3 module so the meaning is visible.
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

# Errors that say the *medium* refuses writes (not that the file or the code is
# wrong): the database carries on in memory.
_UNWRITABLE = frozenset({_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN})

Degraded = Literal["full", "readonly", "error"]

# Free space a restore leaves beyond what it writes, so the next writes do not fail
# at once again.
_RESTORE_MARGIN = 1024 * 1024

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


def _degraded_kind(exc: sqlite3.Error) -> Degraded | None:
    """Why a failed write means the medium refuses writes, or None if it is not that."""
    code = _primary_code(exc)
    text = str(exc)
    if code == _SQLITE_FULL or "database or disk is full" in text:
        return "full"
    if code == _SQLITE_READONLY or "readonly database" in text:
        return "readonly"
    if code in _UNWRITABLE:
        return "error"
    return None


def _is_bug(exc: BaseException) -> bool:
    """Errors that mean the calling code is wrong, not the disk: never disguised."""
    return isinstance(exc, sqlite3.ProgrammingError | sqlite3.IntegrityError)


def _suspect_marker(path: Path) -> Path:
    return path.with_name(path.name + ".suspect")


class Tx:
    """The connection as seen inside `Database.write()`: every statement is logged,
    so that when the medium refuses a write half-way the transaction can be replayed
    on the in-memory copy and the caller never notices (see the module docstring).

    Replaying is exact: the copy is taken after the failed transaction rolled back,
    so it holds the very state the logged statements first ran against.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._log: list[tuple[str, str, Any]] = []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self._run("execute", sql, params)

    def executemany(self, sql: str, seq: Any) -> sqlite3.Cursor:
        return self._run("executemany", sql, list(seq))

    def _run(self, how: str, sql: str, params: Any) -> sqlite3.Cursor:
        conn = self._db._live()
        try:
            cur: sqlite3.Cursor = getattr(conn, how)(sql, params)
        except sqlite3.Error as exc:
            kind = None if _is_bug(exc) else _degraded_kind(exc)
            if kind is None or self._db.degraded is not None:
                raise
            self._db._to_memory(kind, str(exc), self._log)
            cur = getattr(self._db._live(), how)(sql, params)
        self._log.append((how, sql, params))
        return cur


class Database:
    """One open `state.db`. Create with `open_db`; use `read()` / `write()`.

    `recovered_from` is the path the corrupt predecessor was moved to when this
    open had to start afresh (the caller raises an event), else None;
    `recovery_reason` says what was wrong with it; `salvaged` what could be
    copied out of it (table -> rows).

    `degraded` is None while every write is durable on disk, else why the state
    lives in memory ("full", "readonly", "error"; `degraded_detail` has the text).
    `memory_commits` counts the transactions committed only in memory since.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        recovered_from: Path | None = None,
        recovery_reason: str | None = None,
        salvaged: dict[str, int] | None = None,
        degraded: Degraded | None = None,
        degraded_detail: str = "",
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._disk: sqlite3.Connection | None = None if degraded else conn
        self._lock = threading.RLock()
        self._closed = False
        self.path = path
        self.recovered_from = recovered_from
        self.recovery_reason = recovery_reason
        self.salvaged: dict[str, int] = dict(salvaged or {})
        self.degraded: Degraded | None = degraded
        self.degraded_detail = degraded_detail
        self.memory_commits = 0

    @property
    def durable(self) -> bool:
        """Whether a committed write survives a power cut (False while degraded)."""
        return self.degraded is None

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"{self.path}: database is closed")
        return self._conn

    def _fail(self, exc: sqlite3.Error) -> StorageError:
        err = _translate(exc, self.path)
        if isinstance(err, StorageCorrupt) and self.degraded is None:
            # Remember the verdict on disk: quick_check at the next open may
            # miss what SQLite tripped over here, and a restart that hits the
            # same corruption again and again would be a crash loop.
            with contextlib.suppress(OSError):
                marker = _suspect_marker(self.path)
                marker.write_text(str(exc) + "\n")
                fsync_dir(marker.parent)
        return err

    # -- falling back to memory and coming back ---------------------------------------

    def _to_memory(
        self, kind: Degraded, detail: str, replay: list[tuple[str, str, Any]] | None = None
    ) -> None:
        """Carry on in memory from the state on disk; replay the open transaction there.

        Called with the lock held, from inside a write whose disk transaction failed.
        """
        disk = self._live()
        if disk.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                disk.execute("ROLLBACK")
        self._conn = _memory_copy(disk, self.path)
        self.degraded = kind
        self.degraded_detail = f"{self.path}: {detail}"
        log.error("storage %s (%s): state kept in memory until it can be written", kind, detail)
        if replay is not None:
            mem = self._conn
            mem.execute("BEGIN IMMEDIATE")
            for how, sql, params in replay:
                getattr(mem, how)(sql, params)

    def try_restore(self) -> bool:
        """Write the in-memory state back to the file if the medium takes writes again.

        True when the database is (again) durable on disk. Never raises for the
        medium's sake; a failure leaves everything in memory as it was.
        """
        with self._lock:
            if self.degraded is None:
                return True
            mem = self._live()
            disk = self._disk
            if not self._room_for(mem):
                return False
            try:
                if disk is None:
                    if _newer_schema(self.path):  # never overwrite what a newer agent wrote
                        raise StorageError(f"{self.path}: written by a newer agent")
                    disk = _connect_checked(self.path, BUSY_TIMEOUT_MS)
                    self._disk = disk
                # Compact first: the copy goes through the WAL, so it needs the room
                # of what is live, not of everything that passed through memory.
                with contextlib.suppress(sqlite3.Error):
                    mem.execute("VACUUM")
                mem.backup(disk)
                disk.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except (sqlite3.Error, StorageError, _Corrupt, OSError) as exc:
                log.debug("storage still unwritable: %s", exc)
                if disk is not None and disk.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        disk.execute("ROLLBACK")
                return False
            self._conn = disk
            mem.close()
            log.warning("storage writable again: in-memory state written to %s", self.path)
            self.degraded = None
            self.degraded_detail = ""
            return True

    def _room_for(self, mem: sqlite3.Connection) -> bool:
        """Cheap check before a restore: the medium is writable and has room for the
        live pages twice (WAL, then the main file) plus a margin. Keeps a full card
        from being written to (and worn) by restore attempts that cannot succeed."""
        probe = self.path.parent
        try:
            st = os.statvfs(probe)
            pages = mem.execute("PRAGMA page_count").fetchone()[0]
            free_pages = mem.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = mem.execute("PRAGMA page_size").fetchone()[0]
        except (OSError, sqlite3.Error):
            return False
        if st.f_flag & os.ST_RDONLY:
            return False
        need = 2 * (int(pages) - int(free_pages)) * int(page_size) + _RESTORE_MARGIN
        return st.f_bavail * st.f_frsize >= need

    # -- transactions -----------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT), durable when the block ends
        (or, while `degraded`, committed in memory).

        Any exception in the block rolls everything back. A medium that refuses the
        write moves the database to memory and the block carries on there. Other
        SQLite errors come out as StorageCorrupt / StorageError.
        """
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                if _is_bug(exc):
                    raise
                kind = _degraded_kind(exc)
                if kind is None or self.degraded is not None:
                    raise self._fail(exc) from exc
                self._to_memory(kind, str(exc), [])
            tx = Tx(self)
            try:
                yield tx
                self._commit(tx)
            except BaseException as exc:
                conn = self._live()
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and not _is_bug(exc):
                    raise self._fail(exc) from exc
                raise

    def _commit(self, tx: Tx) -> None:
        conn = self._live()
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            kind = None if _is_bug(exc) else _degraded_kind(exc)
            if kind is None or self.degraded is not None:
                raise
            self._to_memory(kind, str(exc), tx._log)
            self._live().execute("COMMIT")
        if self.degraded is not None:
            self.memory_commits += 1

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
        """Close; state still only in memory is written back first if the medium
        takes it now (else it is lost, as it would be to a power cut)."""
        with self._lock:
            if self.degraded is not None and self._conn is not None and not self.try_restore():
                log.error("%s: closing with state only in memory; it is lost", self.path)
            for conn in {id(c): c for c in (self._conn, self._disk) if c is not None}.values():
                conn.close()
            self._conn = None
            self._disk = None

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _newer_schema(path: Path) -> bool:
    src = _open_readonly(path)
    if src is None:
        return False
    try:
        return int(src.execute("PRAGMA user_version").fetchone()[0]) > len(MIGRATIONS)
    except sqlite3.Error:
        return False
    finally:
        src.close()


def _memory_copy(source: sqlite3.Connection | None, path: Path) -> sqlite3.Connection:
    """An in-memory database holding what `source` holds (empty and migrated when
    `source` is None or cannot be read)."""
    mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    if source is not None:
        try:
            source.backup(mem)
        except sqlite3.Error as exc:
            log.error("%s: could not copy the state into memory (%s); starting empty", path, exc)
            mem.close()
            mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    _migrate(mem, path)
    return mem


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


# Written into a database rebuilt from a corrupt file whose replay store or key/value
# state could not be read in full: commands issued before it are refused (a used jti,
# or an older schedule version, might otherwise be accepted again).
REFUSE_BEFORE_KEY = "db.refuse_iat_before"
# A command's iat may run ahead of the device's clock by the exp leeway (PROTOCOL §3).
REFUSE_LEEWAY_S = 30

_SALVAGE: dict[str, tuple[str, str]] = {
    # table: (columns read from the corrupt file, insert into the fresh one)
    "replay": (
        "jti, digest, exp",
        "INSERT OR IGNORE INTO replay (jti, digest, exp) VALUES (?, ?, ?)",
    ),
    "kv": ("key, value", "INSERT OR IGNORE INTO kv (key, value) VALUES (?, ?)"),
    "outbox": (
        "kind, topic, payload, qos, retain, created_at, size",
        "INSERT INTO outbox (kind, topic, payload, qos, retain, created_at, size)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
}


def _open_readonly(path: Path) -> sqlite3.Connection | None:
    """`path` opened for reading only (also on a read-only file system), or None.

    `mode=ro` first: it still reads a WAL left by a crash. Without a `-shm` file on
    a read-only medium SQLite cannot open a WAL database that way, so the file is then
    read as immutable (the WAL, normally empty after a clean stop, is ignored).
    """
    if not path.is_file():
        return None
    for query in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(
                f"file:{path}?{query}", uri=True, isolation_level=None, check_same_thread=False
            )
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error:
            with contextlib.suppress(UnboundLocalError, sqlite3.Error):
                conn.close()
    return None


def _salvage(corrupt: Path, fresh: sqlite3.Connection) -> tuple[dict[str, int], bool]:
    """Copy what can still be read of the replay store, key/value state and outbox out
    of a corrupt file into the fresh one, row by row. Returns (rows copied per table,
    whether the replay store and key/value state were read to the end)."""
    copied = dict.fromkeys(_SALVAGE, 0)
    complete = True
    src = _open_readonly(corrupt)
    if src is None:
        return copied, False
    try:
        for table, (columns, insert) in _SALVAGE.items():
            try:
                cur = src.execute(f"SELECT {columns} FROM {table}")  # constants, not input
                while rows := cur.fetchmany(256):
                    for row in rows:
                        with contextlib.suppress(sqlite3.Error):  # CHECKs refuse garbage
                            fresh.execute(insert, row)
                            copied[table] += 1
            except sqlite3.Error as exc:
                log.error("%s: salvage of %s stopped after %d rows: %s",
                          corrupt, table, copied[table], exc)
                if table != "outbox":
                    complete = False
    finally:
        src.close()
    return copied, complete


def open_db(
    path: Path,
    *,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    clock: Callable[[], float] = time.time,
) -> Database:
    """Open (creating if needed) the state file at `path`, e.g. `<storage dir>/state.db`.

    A corrupt file is moved aside and replaced by a fresh one holding what could be
    salvaged of it; the returned Database then has `recovered_from` set. When the file
    cannot be opened for writing (read-only or full medium, unreadable folder, schema
    from a newer agent) the state is read into memory and `degraded` says why: open
    never fails for the medium's sake. Raises StorageError only when `path` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise StorageError(f"{path}: is a directory, expected the SQLite state file")
    try:
        return _open_on_disk(path, busy_timeout_ms, clock)
    except StorageError as exc:
        kind: Degraded = (
            "full"
            if isinstance(exc, StorageFull)
            else "readonly"
            if read_only_medium(path)
            else "error"
        )
        log.error("%s; serving with the state in memory", exc)
        src = _open_readonly(path)
        try:
            try:
                mem = _memory_copy(src, path)
            except StorageError:  # e.g. a schema from a newer agent: start empty
                mem = _memory_copy(None, path)
        finally:
            if src is not None:
                src.close()
        return Database(mem, path, degraded=kind, degraded_detail=str(exc))


def _open_on_disk(path: Path, busy_timeout_ms: int, clock: Callable[[], float]) -> Database:
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
    salvaged: dict[str, int] = {}
    try:
        _migrate(conn, path)
        if recovered_from is not None:
            salvaged = _keep_what_survived(conn, recovered_from, path, clock())
        if is_new:
            # SQLite syncs the directory for its journals but not for a newly
            # created main file; without this a power cut could lose the name.
            fsync_dir(path.parent)
    except (StorageError, OSError, sqlite3.Error) as exc:
        conn.close()
        if isinstance(exc, StorageError) and "disk is full" in str(exc):
            raise StorageFull(str(exc)) from exc
        if isinstance(exc, sqlite3.Error):
            raise _translate(exc, path) from exc
        if isinstance(exc, OSError):
            raise StorageError(f"{path}: {exc}") from exc
        raise
    return Database(
        conn, path, recovered_from=recovered_from, recovery_reason=reason, salvaged=salvaged
    )


def _last_written(corrupt: Path, now: float) -> float:
    """When the corrupt file (or its WAL) was last written, plus REFUSE_LEEWAY_S: every
    command it accepted was remembered by then. Not the current time, which may be far
    off on a device without a trusted clock: refusing everything until a wrong future
    date would silence the device."""
    times = []
    for p in (corrupt, corrupt.with_name(corrupt.name + "-wal")):
        with contextlib.suppress(OSError):
            times.append(p.stat().st_mtime)
    return (max(times) if times else now) + REFUSE_LEEWAY_S


def _keep_what_survived(
    conn: sqlite3.Connection, corrupt: Path, path: Path, now: float
) -> dict[str, int]:
    """Salvage the corrupt predecessor into the fresh file, in one transaction; when
    its replay store or state could not be read in full, refuse older commands."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        copied, complete = _salvage(corrupt, conn)
        if not complete:
            row = conn.execute(
                "SELECT value FROM kv WHERE key = ?", (REFUSE_BEFORE_KEY,)
            ).fetchone()
            before = max(float(row[0]) if row else 0.0, _last_written(corrupt, now))
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (REFUSE_BEFORE_KEY, json.dumps(before)),
            )
            log.error(
                "%s: replay store or state of the corrupt file not fully readable; "
                "commands issued before %s are refused",
                path,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before)),
            )
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return copied
