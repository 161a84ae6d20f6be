"""The console database's tables (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

Times are integer milliseconds since the Unix epoch (UTC): exact, comparable and
the same in both databases, with no time-zone type quirks. Every table a QoS 1
message lands in has a natural unique key, so a message the broker re-delivers
after a collector crash is stored once (`INSERT ... ON CONFLICT DO NOTHING`).
The migrations in agent/central/migrations/ create exactly these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# 64-bit row ids on PostgreSQL (a province writes ~7 M heartbeats a day); SQLite's
# auto-increment needs INTEGER PRIMARY KEY, which is 64-bit there anyway.
ROW_ID = BigInteger().with_variant(Integer, "sqlite")

# Genuine proofs only: signature verified against the device's enrolled key.
proofs = Table(
    "proofs", metadata,
    Column("device", String(64), nullable=False),
    Column("proof_id", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject_id", String(200), nullable=False),  # item_id | alert_id | session_id
    Column("outcome", String(16), nullable=False),
    Column("reason", String(64)),
    # When the occurrence counts for reports: scheduled_at, else started_at, else receipt.
    Column("at_ms", BigInteger, nullable=False),
    Column("scheduled_ms", BigInteger),
    Column("started_ms", BigInteger),
    Column("ended_ms", BigInteger),
    Column("played_ms", BigInteger, nullable=False),
    Column("volume", Integer),
    Column("level_dbfs", Float),
    Column("heard_dbfs", Float),
    Column("received_ms", BigInteger, nullable=False),
    Column("token", Text, nullable=False),
    PrimaryKeyConstraint("device", "proof_id", name="pk_proofs"),
)
Index("ix_proofs_at", proofs.c.at_ms)

# Proofs that are not evidence: forged, from unknown devices, malformed, or a
# different token reusing a stored proof's id. Kept for the operator, never counted.
suspect_proofs = Table(
    "suspect_proofs", metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("verdict", String(16), nullable=False),  # FORGED | UNKNOWN | MALFORMED | CONFLICT
    Column("reason", String(300), nullable=False),
    Column("proof_id", String(200)),
    Column("token_sha256", String(64), nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("token", Text, nullable=False),
    UniqueConstraint("device", "token_sha256", name="uq_suspect_token"),
)
Index("ix_suspect_received", suspect_proofs.c.received_ms)

# Raw heartbeats (QoS 0), kept `raw_days`; device_days keeps their daily roll-up.
heartbeats = Table(
    "heartbeats", metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("at_ms", BigInteger),
    Column("seq", BigInteger),
    Column("schedule_version", BigInteger),
    Column("playing", String(200)),
    Column("alert_id", String(200)),
    Column("volume", Integer),
    Column("outbox", Integer),
)
Index("ix_heartbeats_device_received", heartbeats.c.device, heartbeats.c.received_ms)
Index("ix_heartbeats_received", heartbeats.c.received_ms)

states = Table(
    "states", metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("online", Boolean),  # None: retained state cleared (device retired)
    Column("at_ms", BigInteger),
    Column("received_ms", BigInteger, nullable=False),
    Column("agent_version", String(64)),
    Column("schedule_version", BigInteger),
    Column("digest", String(64), nullable=False),  # sha256 of the payload: re-delivery key
    UniqueConstraint("device", "digest", name="uq_states_digest"),
)
Index("ix_states_device_received", states.c.device, states.c.received_ms)

acks = Table(
    "acks", metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("jti", String(64)),
    Column("cmd", String(32)),
    Column("status", String(16), nullable=False),
    Column("code", String(64)),
    Column("detail", String(500)),
    Column("at_ms", BigInteger),
    Column("received_ms", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    UniqueConstraint("device", "digest", name="uq_acks_digest"),
)
Index("ix_acks_jti", acks.c.jti)

events = Table(
    "events", metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("level", String(16), nullable=False),
    Column("code", String(64), nullable=False),
    Column("detail", String(500)),
    Column("at_ms", BigInteger),
    Column("received_ms", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    UniqueConstraint("device", "digest", name="uq_events_digest"),
)
Index("ix_events_received", events.c.received_ms)

# Every command `tcs-central send` signed: who, what, to whom, when.
commands = Table(
    "commands", metadata,
    Column("jti", String(64), primary_key=True),
    Column("issued_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("operator", String(64), nullable=False),
    Column("issuer", String(64), nullable=False),
    Column("kid", String(64), nullable=False),
    Column("cmd", String(32), nullable=False),
    Column("target_kind", String(8), nullable=False),  # device | group
    Column("target", String(64), nullable=False),
    Column("args", Text, nullable=False),  # JSON
    Column("tamper", String(32)),  # test tokens deliberately broken; never expected to play
)
Index("ix_commands_cmd_issued", commands.c.cmd, commands.c.issued_ms)

# Daily roll-up per device and local day, kept for years.
device_days = Table(
    "device_days", metadata,
    Column("device", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("hb_count", Integer, nullable=False),
    Column("hb_buckets", Integer, nullable=False),  # distinct heartbeat_s slots with a heartbeat
    Column("last_bucket", BigInteger, nullable=False),
    PrimaryKeyConstraint("device", "day", name="pk_device_days"),
)

# Daily totals of proofs per device, local day and outcome, written before raw
# proofs older than `keep_days` are deleted: what a multi-year comparison needs.
proof_days = Table(
    "proof_days", metadata,
    Column("device", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("count", Integer, nullable=False),
    Column("played_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("device", "day", "outcome", name="pk_proof_days"),
)
