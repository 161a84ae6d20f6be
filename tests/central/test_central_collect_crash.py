"""A collector killed with SIGKILL in the middle of a burst of QoS 1 proofs loses none
and stores none twice (real Mosquitto, persistent session, PUBACK after commit)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from support.broker import mqtt_client
from support.central import Console
from support.records import CollectorProc, poll, proof_record, signed_proof

from agent.central import schema
from agent.central.store import open_db

BURST = 1000


@pytest.mark.anyio
async def test_kill_9_mid_burst_stores_every_proof_exactly_once(
    broker: Any, console: Console, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    engine = open_db(db_url)

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.proofs)).scalar_one())

    base = datetime(2026, 11, 2, 5, 30, tzinfo=UTC)
    tokens = {
        dev: [signed_proof(console.device_keys[dev], dev, proof_record(
            f"morning@{i}", scheduled=base + timedelta(days=i))) for i in range(BURST // 2)]
        for dev in ("dev-0001", "dev-0002")
    }
    col = CollectorProc(console.config, db_url).start()
    try:
        await asyncio.to_thread(col.wait_subscribed)

        async def burst(dev: str) -> None:
            async with mqtt_client(broker, dev) as client:
                for token in tokens[dev]:
                    await client.publish(f"tcs/v1/dev/{dev}/proof", token, qos=1)

        senders = [asyncio.create_task(burst(d)) for d in tokens]
        # Kill once some, not all, are stored: mid-burst by construction.
        await asyncio.to_thread(poll, "proofs stored before the kill", stored,
                                lambda n: n >= 20)
        col.kill()
        at_kill = stored()
        await asyncio.gather(*senders)
        assert at_kill < BURST, "the collector kept up with the whole burst before the kill"
        col.start()
        await asyncio.to_thread(col.wait_subscribed)
        await asyncio.to_thread(poll, "every proof stored", stored, lambda n: n == BURST)
    finally:
        col.kill()
    with engine.connect() as conn:
        ids = conn.execute(select(schema.proofs.c.device, schema.proofs.c.proof_id)).all()
        suspects = conn.execute(select(func.count()).select_from(schema.suspect_proofs))
        assert suspects.scalar_one() == 0
    assert sorted(ids) == sorted((d, f"morning@{i}") for d in tokens for i in range(BURST // 2))
