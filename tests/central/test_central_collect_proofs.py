"""The collector against a real Mosquitto: forged, unknown-device and replayed proofs
are kept apart and never counted; two collectors of one share group split the
reports without losing or doubling any; a database outage loses nothing; `send --db`
records what it signed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select
from support import postgres as pg
from support.broker import DEFAULT_DEVICES, DeviceEntry, mqtt_client
from support.central import Console, make_console
from support.records import REPO, poll, proof_record, signed_proof

from agent.central import schema
from agent.central.acl import load_devices
from agent.central.collector import Collector
from agent.central.ingest import IngestContext
from agent.central.proofs import enrolled_keys
from agent.central.retention import RetentionPolicy
from agent.central.settings import BrokerSettings
from agent.central.store import open_db, resolve_url

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@contextlib.asynccontextmanager
async def running(console: Console, engine: Engine,
                  broker_settings: BrokerSettings | None = None) -> AsyncIterator[Collector]:
    s = console.settings
    assert s.broker is not None and s.devices_file is not None
    keys, _ = enrolled_keys(load_devices(s.devices_file))
    col = Collector(broker_settings or s.broker, engine, IngestContext(keys, TZ, 60),
                    share_group="tcs-central", session_expiry_s=3600,
                    policy=RetentionPolicy(14, 400, TZ))
    task = asyncio.create_task(col.run())
    try:
        await asyncio.wait_for(col.subscribed.wait(), 20)
        yield col
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


async def test_forged_unknown_and_replayed_proofs_are_never_counted(
    broker: Any, console: Console, tmp_path: Path
) -> None:
    engine = open_db(f"sqlite:///{tmp_path / 'c.db'}")
    at = datetime(2026, 11, 3, 5, 30, tzinfo=UTC)
    key1 = console.device_keys["dev-0001"]
    genuine = signed_proof(key1, "dev-0001", proof_record("p-1", scheduled=at))
    forged = signed_proof(Ed25519PrivateKey.generate(), "dev-0001",
                          proof_record("p-2", scheduled=at + timedelta(days=1)))
    async with running(console, engine):
        async with mqtt_client(broker, "dev-0001") as dev1, \
                mqtt_client(broker, "dev-0002") as dev2:
            await dev1.publish("tcs/v1/dev/dev-0001/proof", genuine, qos=1)
            await dev1.publish("tcs/v1/dev/dev-0001/proof", forged, qos=1)
            await dev1.publish("tcs/v1/dev/dev-0001/proof", genuine, qos=1)  # replayed
            await dev2.publish("tcs/v1/dev/dev-0002/proof", genuine, qos=1)  # someone else's
            await dev2.publish("tcs/v1/dev/dev-0002/proof", b"not a jws", qos=1)
        await asyncio.to_thread(poll, "suspects stored",
                                lambda: _count(engine, schema.suspect_proofs), lambda n: n == 3)
    with engine.connect() as conn:
        proofs = conn.execute(select(schema.proofs.c.device, schema.proofs.c.proof_id)).all()
        suspects = sorted(conn.execute(
            select(schema.suspect_proofs.c.device, schema.suspect_proofs.c.verdict)).all())
    assert proofs == [("dev-0001", "p-1")]
    assert suspects == [("dev-0001", "FORGED"), ("dev-0002", "FORGED"), ("dev-0002", "FORGED")]


async def test_unknown_device_proof_is_kept_apart(broker_factory: Any, tmp_path: Path) -> None:
    stranger = DeviceEntry("dev-0099", ("vn-48",))
    broker = broker_factory((*DEFAULT_DEVICES, stranger))
    console = make_console(broker, tmp_path / "central")  # enrols dev-0001/2 only
    engine = open_db(f"sqlite:///{tmp_path / 'c.db'}")
    token = signed_proof(Ed25519PrivateKey.generate(), "dev-0099",
                         proof_record("x-1", scheduled=datetime(2026, 11, 3, tzinfo=UTC)))
    async with running(console, engine):
        async with mqtt_client(broker, "dev-0099") as dev:
            await dev.publish("tcs/v1/dev/dev-0099/proof", token, qos=1)
        await asyncio.to_thread(poll, "suspect stored",
                                lambda: _count(engine, schema.suspect_proofs), lambda n: n == 1)
    with engine.connect() as conn:
        verdict = conn.execute(select(schema.suspect_proofs.c.verdict)).scalar_one()
    assert verdict == "UNKNOWN"
    assert _count(engine, schema.proofs) == 0


async def test_two_collectors_in_one_share_group_split_the_reports(
    broker_factory: Any, tmp_path: Path
) -> None:
    broker = broker_factory(console_users=("central", "central-b"))
    console = make_console(broker, tmp_path / "central")
    assert console.settings.broker is not None
    second = replace(console.settings.broker, username="central-b",
                     password=broker.password("central-b"))
    engine = open_db(f"sqlite:///{tmp_path / 'c.db'}")
    key = console.device_keys["dev-0001"]
    base = datetime(2026, 11, 1, tzinfo=UTC)
    async with running(console, engine) as a, running(console, engine, second) as b:
        async with mqtt_client(broker, "dev-0001") as dev:
            for i in range(200):
                await dev.publish("tcs/v1/dev/dev-0001/proof", signed_proof(
                    key, "dev-0001", proof_record(f"p-{i}", scheduled=base + timedelta(
                        hours=i))), qos=1)
        await asyncio.to_thread(poll, "all stored", lambda: _count(engine, schema.proofs),
                                lambda n: n == 200)
        assert a.stored > 0 and b.stored > 0, (a.stored, b.stored)
        assert a.stored + b.stored == 200


async def test_send_with_db_records_who_what_to_whom_when(
    broker: Any, console: Console, tmp_path: Path
) -> None:
    db = tmp_path / "c.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.central.cli", "-c", str(console.config), "send",
        "--db", f"sqlite:///{db}", "--group", "vn-48", "alert.start",
        "--set", "alert_id=flood-9", "--set", "text=Lũ", cwd=REPO,
        env=dict(os.environ), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    engine = open_db(f"sqlite:///{db}")
    with engine.connect() as conn:
        row = conn.execute(select(schema.commands)).one()
    jti = out.decode().split()[1]
    assert (row.jti, row.cmd, row.target_kind, row.target, row.kid, row.issuer) == (
        jti, "alert.start", "group", "vn-48", "vn-48-emergency", "vn-48")
    assert row.operator and '"alert_id": "flood-9"' in row.args
    assert abs(row.issued_ms / 1000 - datetime.now(UTC).timestamp()) < 120


async def test_database_outage_delays_but_loses_nothing(
    broker: Any, console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    key = console.device_keys["dev-0001"]
    base = datetime(2026, 11, 1, tzinfo=UTC)
    tokens = [signed_proof(key, "dev-0001", proof_record(f"p-{i}", scheduled=base + timedelta(
        hours=i))) for i in range(60)]
    with pg.cluster() as db:
        engine = open_db(resolve_url(db.url, Path(".")))
        async with running(console, engine), mqtt_client(broker, "dev-0001") as dev:
            for token in tokens[:30]:
                await dev.publish("tcs/v1/dev/dev-0001/proof", token, qos=1)
            await asyncio.to_thread(poll, "first half stored",
                                    lambda: _count(engine, schema.proofs), lambda n: n == 30)
            await asyncio.to_thread(db.stop)
            for token in tokens[30:]:
                await dev.publish("tcs/v1/dev/dev-0001/proof", token, qos=1)
            await asyncio.to_thread(poll, "the collector noticed the outage",
                                    lambda: caplog.text,
                                    lambda t: "database unavailable" in t)
            await asyncio.to_thread(db.start)
            await asyncio.to_thread(poll, "every proof stored after the outage",
                                    lambda: _count(engine, schema.proofs),
                                    lambda n: n == 60, 120)
        engine.dispose()
