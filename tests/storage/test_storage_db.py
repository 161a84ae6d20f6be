"""state.db: WAL + FULL sync, schema migrations, corruption recovery, disk full, threads."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.tmpfs import remount, tmpfs

import agent.db as dbmod
from agent.db import StorageCorrupt, StorageError, open_db
from agent.outbox import Outbox
from agent.replay import ReplayStore
from agent.state import StateStore

QUOTA = 64 * 1024 * 1024


def _fill(db_path: Path, n: int = 200) -> None:
    with open_db(db_path) as db:
        out = Outbox(db, QUOTA)
        for i in range(n):
            out.put("proof", "tcs/v1/dev/dev-0001/proof", bytes([i % 256]) * 500)


def _scribble(path: Path, start: int, length: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    data = bytearray(path.read_bytes())
    for off in range(start, min(start + length, len(data))):
        data[off] = rng.randrange(256)
    path.write_bytes(bytes(data))


def test_opens_in_wal_with_full_sync_and_current_schema(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        with db.read() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        assert db.schema_version == dbmod.schema_version() >= 1
        assert db.recovered_from is None


def test_creates_missing_storage_folder(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "tcs-agent" / "state.db"
    with open_db(path) as db:
        StateStore(db).set("volume", 70)
    with open_db(path) as db:
        assert StateStore(db).get("volume") == 70


def test_forward_migration_keeps_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    with open_db(path) as db:
        StateStore(db).set("volume", 55)
    v2 = (*dbmod.MIGRATIONS, ("CREATE TABLE extra (x INTEGER)", "INSERT INTO extra VALUES (7)"))
    monkeypatch.setattr(dbmod, "MIGRATIONS", v2)
    with open_db(path) as db:
        assert db.schema_version == len(v2)
        assert StateStore(db).get("volume") == 55
        with db.read() as conn:
            assert conn.execute("SELECT x FROM extra").fetchall() == [(7,)]
    # Opening again does not re-run it.
    with open_db(path) as db, db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM extra").fetchone() == (1,)


def test_failed_migration_leaves_old_version_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    with open_db(path) as db:
        StateStore(db).set("volume", 55)
    bad = (*dbmod.MIGRATIONS, ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL"))
    monkeypatch.setattr(dbmod, "MIGRATIONS", bad)
    with pytest.raises(StorageError, match="migration to schema version 2"):
        open_db(path)
    monkeypatch.undo()
    with open_db(path) as db:
        assert db.schema_version == 1
        assert StateStore(db).get("volume") == 55
        with db.read() as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "half" not in tables


def test_schema_from_newer_agent_serves_in_memory_and_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_db(path) as db, db.write() as conn:
        conn.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    with open_db(path) as db:
        assert db.degraded == "error"
        assert "schema version 99 is newer" in db.degraded_detail
        StateStore(db).set("volume", 40)  # the agent serves on, in memory
        assert StateStore(db).get("volume") == 40
        assert not db.try_restore()  # never overwrites what a newer agent wrote
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("where", "length"),
    [(0, 100), (4096 * 3, 4096 * 3)],
    ids=["header", "middle-pages"],
)
def test_corrupt_file_is_moved_aside_and_reported(tmp_path: Path, where: int, length: int) -> None:
    path = tmp_path / "state.db"
    _fill(path)
    originals = {bytes([i % 256]) * 500 for i in range(200)}
    _scribble(path, where, length)
    garbage_before = path.read_bytes()
    with open_db(path, clock=lambda: 1_795_000_000.0) as db:
        assert db.recovered_from is not None
        assert db.recovered_from.name == "state.db.corrupt-20261118T110640Z"
        assert db.recovered_from.read_bytes() == garbage_before  # kept for forensics
        assert db.recovery_reason
        # The fresh file works, and holds only proofs that were really there.
        out = Outbox(db, QUOTA)
        salvaged = out.pending(limit=1000)
        assert len(salvaged) == db.salvaged["outbox"]
        assert {r.payload for r in salvaged} <= originals
        rid = out.put("event", "tcs/v1/dev/dev-0001/event", b'{"code":"storage_recovered"}').id
        assert [r.id for r in out.pending(limit=1000)][-1] == rid
    with open_db(path) as db:
        assert db.recovered_from is None
        assert Outbox(db, QUOTA).count() == len(salvaged) + 1


def test_corruption_found_while_running_is_recovered_at_next_open(tmp_path: Path) -> None:
    """quick_check passed at open, SQLite trips over a bad page later: the error
    is StorageCorrupt, and the restart that follows must not hit it again."""
    path = tmp_path / "state.db"
    _fill(path)
    db = open_db(path)
    try:
        with db.read() as conn:
            conn.execute("PRAGMA cache_size = 1")  # make it read the pages again
        _scribble(path, 4096 * 1, 4096 * 20)  # outbox root (page 2) and data
        with pytest.raises(StorageCorrupt):
            Outbox(db, QUOTA).pending(limit=1000)
    finally:
        db.close()
    with open_db(path) as db:
        assert db.recovered_from is not None
        assert "in use" in (db.recovery_reason or "")
        assert Outbox(db, QUOTA).count() == 0
    with open_db(path) as db:
        assert db.recovered_from is None


def test_page_limit_full_carries_on_in_memory_and_keeps_what_was_stored(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        out = Outbox(db, QUOTA)
        kept = [out.put("proof", "t/p", os.urandom(1000)).id for _ in range(5)]
        with db.read() as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        more = [out.put("proof", "t/p", os.urandom(3000)).id for _ in range(100)]
        assert db.degraded == "full" and not db.durable
        assert "full" in db.degraded_detail
        assert [r.id for r in out.pending(limit=1000)] == kept + more
        assert db.memory_commits > 0
        # Sending what was queued frees room in memory too.
        out.delete_many([r.id for r in out.pending(limit=1000)])
        assert out.count() == 0


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "full", size="4m") as mnt:
        yield mnt


def test_real_full_disk_serves_from_memory_then_writes_back(tiny_tmpfs: Path) -> None:
    path = tiny_tmpfs / "state.db"
    filler = tiny_tmpfs / "filler"
    filler.write_bytes(b"\0" * 3584 * 1024)
    stored: list[int] = []
    with open_db(path) as db:
        out = Outbox(db, QUOTA)
        state = StateStore(db)
        for i in range(400):  # far more than the disk holds
            stored.append(out.put("proof", "t/p", os.urandom(2000)).id)
            state.set("n", i)
        assert db.degraded == "full"
        assert not db.try_restore()  # still full: nothing changes
        assert [r.id for r in out.pending(limit=1000)] == stored
        # The file on disk is sound meanwhile (another reader sees the last durable state).
        with open_db(path) as other:
            assert other.recovered_from is None and other.degraded is None
        out.delete_many(stored[:350])  # sent while the card was full
        filler.unlink()  # space returns
        assert db.try_restore()
        assert db.durable
        out.put("proof", "t/p", b"after")  # durable again
    with open_db(path) as db:
        assert db.degraded is None and db.recovered_from is None
        assert [r.id for r in Outbox(db, QUOTA).pending(limit=1000)][:-1] == stored[350:]
        assert StateStore(db).get("n") == 399


def test_read_only_medium_at_start_serves_from_memory(tiny_tmpfs: Path) -> None:
    path = tiny_tmpfs / "state" / "state.db"
    with open_db(path) as db:
        StateStore(db).set("schedule.version", 7)
        Outbox(db, QUOTA).put("proof", "t/p", b"old proof")
    remount(tiny_tmpfs, ro=True)
    with open_db(path) as db:
        assert db.degraded == "readonly"
        state = StateStore(db)
        assert state.get("schedule.version") == 7  # what was on the card is read
        state.set("schedule.version", 8)
        Outbox(db, QUOTA).put("proof", "t/p", b"new proof")
        assert not db.try_restore()
        remount(tiny_tmpfs, ro=False)
        assert db.try_restore()
    with open_db(path) as db:
        assert db.degraded is None
        assert StateStore(db).get("schedule.version") == 8
        assert [r.payload for r in Outbox(db, QUOTA).pending()] == [b"old proof", b"new proof"]


def test_read_only_medium_without_a_state_file_starts_empty(tiny_tmpfs: Path) -> None:
    remount(tiny_tmpfs, ro=True)
    with open_db(tiny_tmpfs / "state" / "state.db") as db:
        assert db.degraded == "readonly"
        assert StateStore(db).get("schedule.version") is None
        StateStore(db).set("audio.volume", 50)


def test_many_threads_share_one_database(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        out = Outbox(db, QUOTA)
        state = StateStore(db)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(25):
                    out.put("ack", "t/a", f"{n}:{i}".encode())
                    state.set(f"w{n}", i)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors
        payloads = [r.payload.decode() for r in out.pending(limit=1000)]
        assert sorted(payloads) == sorted(f"{n}:{i}" for n in range(4) for i in range(25))
        for n in range(4):  # each thread's own puts stay in its order
            mine = [p for p in payloads if p.startswith(f"{n}:")]
            assert mine == [f"{n}:{i}" for i in range(25)]
        assert [state.get(f"w{n}") for n in range(4)] == [24] * 4


def test_closed_database_says_so(tmp_path: Path) -> None:
    db = open_db(tmp_path / "state.db")
    db.close()
    with pytest.raises(StorageError, match="closed"):
        StateStore(db).get("volume")


def test_path_that_is_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is a directory"):
        open_db(tmp_path)


def test_rebuild_keeps_replay_store_schedule_version_and_proofs(tmp_path: Path) -> None:
    """A file found corrupt while in use is rebuilt at the next open; whatever can
    still be read of it (here: everything) is carried over, so a used jti stays used."""
    path = tmp_path / "state.db"
    with open_db(path) as db:
        ReplayStore(db).remember("j-used", "d" * 64, 1_900_000_000)
        StateStore(db).set_many({"schedule.version": 42, "audio.volume": 70})
        Outbox(db, QUOTA).put("proof", "t/p", b"proof-1")
    (tmp_path / "state.db.suspect").write_text("database disk image is malformed\n")
    with open_db(path, clock=lambda: 1_795_000_000.0) as db:
        assert db.recovered_from is not None
        assert db.salvaged == {"replay": 1, "kv": 2, "outbox": 1}
        assert ReplayStore(db).seen("j-used") == "d" * 64
        state = StateStore(db)
        assert state.get("schedule.version") == 42
        assert state.get(dbmod.REFUSE_BEFORE_KEY) is None  # nothing was lost
        assert [r.payload for r in Outbox(db, QUOTA).pending()] == [b"proof-1"]


def test_rebuild_that_loses_the_replay_store_refuses_older_commands(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_db(path) as db:
        ReplayStore(db).remember("j-used", "d" * 64, 1_900_000_000)
    _scribble(path, 0, 100)  # the header: nothing can be read back
    os.utime(path, (1_795_000_000.5, 1_795_000_000.5))  # last written then
    cutoff = 1_795_000_000.5 + dbmod.REFUSE_LEEWAY_S
    # Whatever the clock says now (here: years later), the cut-off is the file's last
    # write: a device clock gone wrong must not make it refuse everything.
    with open_db(path, clock=lambda: 2_000_000_000.0) as db:
        assert db.recovered_from is not None
        assert ReplayStore(db).seen("j-used") is None
        assert StateStore(db).get(dbmod.REFUSE_BEFORE_KEY) == cutoff
    # The refusal survives later restarts (and later rebuilds keep the latest time).
    with open_db(path) as db:
        assert StateStore(db).get(dbmod.REFUSE_BEFORE_KEY) == cutoff
