"""The console database: open it (SQLite or PostgreSQL), migrate it, write batches.

One writer per collector process; every write is a batch in one transaction, and
the collector acknowledges the batch's messages to the broker only after `write`
returned (the agent's journal pattern). Every insert is idempotent, so a batch
re-delivered after a crash between commit and PUBACK changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    case,
    create_engine,
    event,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from agent.central import schema

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_DB_NAME = "central.db"


def resolve_url(text: str | None, base: Path) -> str:
    """`sqlite:///PATH` (relative to `base`), `postgresql://...`; None: base/central.db.

    ValueError names what is wrong. `postgresql://` is driven by psycopg 3.
    """
    if text is None:
        return f"sqlite:///{(base / DEFAULT_DB_NAME).resolve()}"
    try:
        url = make_url(text)
    except Exception:
        raise ValueError(f"database URL {text!r} is not sqlite:///PATH or postgresql://...") \
            from None
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == ":memory:":
            raise ValueError(f"database URL {text!r} names no file (sqlite:///PATH)")
        path = Path(url.database).expanduser()
        if not path.is_absolute():
            path = base / path
        return f"sqlite:///{path.resolve()}"
    if url.drivername in ("postgresql", "postgresql+psycopg", "postgres"):
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"database URL {text!r}: only sqlite:/// and postgresql:// are supported")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL + FULL: a committed batch survives a power cut, and it has been PUBACKed.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic); safe to run at every start."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_db(url: str) -> Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, for both dialects."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), list(rows))


@dataclass(frozen=True)
class Row:
    """One row for one table, as built by agent/central/ingest.py."""

    table: str  # proofs | suspect_proofs | heartbeats | states | acks | events
    values: dict[str, Any]


@dataclass(frozen=True)
class BucketHit:
    """A heartbeat slot seen for the daily roll-up (`device_days`)."""

    device: str
    day: date
    bucket: int
    count: int


_TABLES: dict[str, Table] = {
    t.name: t for t in (schema.proofs, schema.suspect_proofs, schema.heartbeats, schema.states,
                        schema.acks, schema.events)
}


def _lookup(conn: Connection, columns: Sequence[Any], a: Any, b: Any,
            pairs: Sequence[tuple[Any, Any]], chunk: int = 200) -> list[Any]:
    """Rows whose (a, b) is one of `pairs`.

    On SQLite as OR-ed equalities in chunks, not `(a, b) IN (VALUES ...)`: SQLite does
    not use the primary-key index for a row-value IN list and would scan the whole
    table once per batch. PostgreSQL plans the row-value IN list well.
    """
    if conn.dialect.name == "postgresql":
        return list(conn.execute(select(*columns).where(tuple_(a, b).in_(list(pairs)))).all())
    found: list[Any] = []
    for i in range(0, len(pairs), chunk):
        cond = or_(*(and_(a == x, b == y) for x, y in pairs[i:i + chunk]))
        found.extend(conn.execute(select(*columns).where(cond)).all())
    return found


def _proofs(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Split genuine proofs into new ones and CONFLICT suspects (same id, other token)."""
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    suspects: list[dict[str, Any]] = []
    for row in rows:
        key = (row["device"], row["proof_id"])
        seen = unique.get(key)
        if seen is None:
            unique[key] = row
        elif seen["token"] != row["token"]:
            suspects.append(_conflict(row))
    if unique:
        p = schema.proofs.c
        stored = _lookup(conn, (p.device, p.proof_id, p.token), p.device, p.proof_id,
                         list(unique))
        for device, proof_id, token in stored:
            row = unique.pop((device, proof_id))
            if row["token"] != token:
                suspects.append(_conflict(row))
    insert_ignore(conn, schema.proofs, list(unique.values()))
    return suspects


def _conflict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "device": row["device"], "verdict": "CONFLICT",
        "reason": "a different signed proof already holds this id; the first is kept",
        "proof_id": row["proof_id"], "token_sha256": digest(row["token"].encode()),
        "received_ms": row["received_ms"], "token": row["token"],
    }


def _roll_up(conn: Connection, hits: Sequence[BucketHit]) -> None:
    """Add a batch's heartbeats to `device_days`: count, and slots not counted before.

    A slot counts once: slots later than the row's `last_bucket` are new. Heartbeats
    of one device arrive in order, so this is exact for one collector; two collectors
    splitting one device's heartbeats could count a shared slot twice.
    """
    if not hits:
        return
    slots: dict[tuple[str, date], set[int]] = {}
    counts: dict[tuple[str, date], int] = {}
    for h in hits:
        slots.setdefault((h.device, h.day), set()).add(h.bucket)
        counts[(h.device, h.day)] = counts.get((h.device, h.day), 0) + h.count
    t = schema.device_days
    last = {
        (device, day): bucket for device, day, bucket in _lookup(
            conn, (t.c.device, t.c.day, t.c.last_bucket), t.c.device, t.c.day, list(slots))
    }
    rows = []
    for key, seen in slots.items():
        before = last.get(key, -1)
        rows.append({"device": key[0], "day": key[1], "hb_count": counts[key],
                     "hb_buckets": sum(1 for b in seen if b > before),
                     "last_bucket": max(max(seen), before)})
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(t)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.device, t.c.day],
        set_={"hb_count": t.c.hb_count + stmt.excluded.hb_count,
              "hb_buckets": t.c.hb_buckets + stmt.excluded.hb_buckets,
              "last_bucket": case((stmt.excluded.last_bucket > t.c.last_bucket,
                                   stmt.excluded.last_bucket), else_=t.c.last_bucket)},
    )
    conn.execute(stmt, rows)


def write(engine: Engine, rows: Iterable[Row], hits: Sequence[BucketHit] = ()) -> None:
    """Store one batch atomically and idempotently; returns once it is committed."""
    by_table: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_table.setdefault(row.table, []).append(row.values)
    with engine.begin() as conn:
        suspects = _proofs(conn, by_table.pop("proofs", []))
        by_table.setdefault("suspect_proofs", []).extend(suspects)
        for name, values in by_table.items():
            if name == "heartbeats":
                conn.execute(schema.heartbeats.insert(), values)
            else:
                insert_ignore(conn, _TABLES[name], values)
        _roll_up(conn, hits)
