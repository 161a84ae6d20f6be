"""Retention: raw heartbeats go after raw_days (the daily roll-up stays), proofs after
keep_days (added to the daily totals first), so the database stops growing."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from support.records import proof_record, signed_proof

from agent import jws
from agent.central import schema, store
from agent.central.acl import DeviceEntry
from agent.central.figures import compute
from agent.central.ingest import IngestContext, parse
from agent.central.retention import RetentionPolicy, prune
from agent.reports import dumps

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_old_heartbeats_and_proofs_roll_up_then_go(tmp_path: Path) -> None:
    engine = store.open_db(f"sqlite:///{tmp_path / 'c.db'}")
    key = Ed25519PrivateKey.generate()
    ctx = IngestContext({"dev-0001": jws.public_raw(key)}, TZ, 60)
    start = datetime(2026, 1, 1, 5, 30, tzinfo=TZ)
    rows, hits = [], []
    for day in range(60):
        at = start + timedelta(days=day)
        ms = int(at.timestamp() * 1000)
        for topic, payload in (
            ("tcs/v1/dev/dev-0001/hb", dumps({"seq": day})),
            ("tcs/v1/dev/dev-0001/proof", signed_proof(key, "dev-0001", proof_record(
                f"p-{day}", scheduled=at, played_s=10))),
        ):
            parsed = parse(topic, payload, ms, ctx)
            rows += parsed.rows
            hits += parsed.hits
    store.write(engine, rows, hits)
    now = int((start + timedelta(days=60)).timestamp() * 1000)
    removed = prune(engine, RetentionPolicy(raw_days=14, keep_days=30, tz=TZ), now)
    assert removed == {"heartbeats": 46, "proofs": 30}
    with engine.connect() as conn:
        def count(t: object) -> int:
            return int(conn.execute(select(func.count()).select_from(t)).scalar_one())

        assert count(schema.heartbeats) == 14
        assert count(schema.proofs) == 30
        assert count(schema.device_days) == 60  # the roll-up keeps every day
        totals = conn.execute(select(schema.proof_days.c.day, schema.proof_days.c.count,
                                     schema.proof_days.c.played_ms)
                              .order_by(schema.proof_days.c.day)).all()
    assert len(totals) == 30
    assert totals[0] == (date(2026, 1, 1), 1, 10_000)
    # A second pass finds nothing more to do and does not double the totals.
    assert prune(engine, RetentionPolicy(raw_days=14, keep_days=30, tz=TZ), now) == {}
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(schema.proof_days.c.count))).scalar_one() == 30
    # A report over the whole span still counts every proof: 30 rolled up, 30 raw.
    report = compute(engine, [DeviceEntry("dev-0001")], date(2026, 1, 1), date(2026, 3, 1),
                     TZ, "device", 60)
    tally = report.rows["dev-0001"]
    assert (tally.proofs, tally.played_ms) == (60, 600_000)
    assert len(tally.offsets_ms) == 30  # start offsets only survive in the raw proofs
