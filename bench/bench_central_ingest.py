"""tcs-central collector: ingest rate and database size, SQLite and PostgreSQL.

    .venv/bin/python bench/bench_central_ingest.py [--devices 5000] [--messages 40000]

Two figures per database:
- pipeline: what one collector core does per message (parse, verify the Ed25519
  proof, store in batches of 200 in one transaction each) for a mix of heartbeats
  and proofs from `--devices` simulated devices; CPU seconds of this process only.
- end to end: proofs published by two devices through a real Mosquitto to
  `tcs-central collect` (manual PUBACK after commit), until all are stored.
And the bytes per stored heartbeat / proof row, from which a device-month follows.
PostgreSQL runs as a private cluster (tests/support/postgres.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from procstat import cpu_seconds  # noqa: E402
from support.broker import DEFAULT_DEVICES, Broker, mqtt_client  # noqa: E402
from support.central import make_console  # noqa: E402
from support.postgres import postgres_cluster  # noqa: E402
from support.records import CollectorProc, poll, proof_record, signed_proof  # noqa: E402

from agent import jws  # noqa: E402
from agent.central import schema, store  # noqa: E402
from agent.central.ingest import IngestContext, parse  # noqa: E402
from agent.reports import dumps  # noqa: E402

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt: "N pending publish calls"
BATCH = 200


def _messages(devices: int, n: int) -> tuple[list[tuple[str, bytes, int]], dict[str, bytes]]:
    keys = {f"dev-{i:05d}": Ed25519PrivateKey.generate() for i in range(devices)}
    raw = {d: jws.public_raw(k) for d, k in keys.items()}
    ids = list(keys)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    msgs = []
    for i in range(n):
        dev = ids[i % devices]
        at = t0 + timedelta(seconds=i)
        ms = int(at.timestamp() * 1000)
        if i % 2:
            payload = signed_proof(keys[dev], dev, proof_record(f"p-{i}", scheduled=at))
            msgs.append((f"tcs/v1/dev/{dev}/proof", payload, ms))
        else:
            payload = dumps({"seq": i, "at": at.isoformat(), "uptime_s": i, "agent_version":
                             "0.1.0", "schedule_version": 3, "playing": None, "alert_id": None,
                             "volume": 80, "clock": {"synced": True, "source": "ntp"},
                             "cpu_temp_c": 51.2, "load1": 0.3, "mem_used_pct": 41.0,
                             "disk_free_mb": 5120, "cache": {"items": 4, "bytes": 1 << 24,
                                                             "missing": 0},
                             "audio": {"ok": True, "device": "default"},
                             "display": {"ok": True, "kind": "none"}, "modem": None,
                             "outbox": 0})
            msgs.append((f"tcs/v1/dev/{dev}/hb", payload, ms))
    return msgs, raw


def pipeline(engine: Engine, msgs: list[tuple[str, bytes, int]], keys: dict[str, bytes]
             ) -> float:
    ctx = IngestContext(keys, TZ, 60)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(0, len(msgs), BATCH):
        rows: list[store.Row] = []
        hits: list[store.BucketHit] = []
        for topic, payload, ms in msgs[i:i + BATCH]:
            parsed = parse(topic, payload, ms, ctx)
            rows += parsed.rows
            hits += parsed.hits
        store.write(engine, rows, hits)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"  pipeline: {len(msgs)} msgs in {wall:.2f} s wall, {cpu:.2f} s CPU of this "
          f"process -> {len(msgs) / wall:,.0f} msg/s wall, {len(msgs) / cpu:,.0f} msg/s per "
          "CPU-second")
    return len(msgs) / wall


def row_bytes(engine: Engine, sqlite_path: Path | None) -> tuple[float, float]:
    with engine.connect() as conn:
        hb = conn.execute(select(func.count()).select_from(schema.heartbeats)).scalar_one()
        pr = conn.execute(select(func.count()).select_from(schema.proofs)).scalar_one()
        if sqlite_path is not None:
            con = sqlite3.connect(sqlite_path)
            sizes = dict(con.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
            con.close()
            hb_b = sum(v for k, v in sizes.items() if "heartbeat" in k)
            pr_b = sum(v for k, v in sizes.items() if k == "proofs" or "proofs_" in k
                       or k == "sqlite_autoindex_proofs_1")
        else:
            hb_b = conn.execute(text("SELECT pg_total_relation_size('heartbeats')")).scalar_one()
            pr_b = conn.execute(text("SELECT pg_total_relation_size('proofs')")).scalar_one()
    return hb_b / max(hb, 1), pr_b / max(pr, 1)


async def end_to_end(workdir: Path, db_url: str, n: int, inflight: int | None) -> float:
    broker = Broker(workdir / "broker", DEFAULT_DEVICES)
    if inflight is not None:
        # Mosquitto sends a client at most 20 unacknowledged QoS 1 messages by
        # default: with PUBACK after commit, that caps a batch at 20 (one fsync each).
        with broker.conf_file.open("a") as conf:
            conf.write(f"max_inflight_messages {inflight}\n")
    broker.start()
    try:
        console = make_console(broker, workdir / "central")
        col = CollectorProc(console.config, db_url).start()
        try:
            await asyncio.to_thread(col.wait_subscribed)
            t0 = datetime(2026, 11, 1, tzinfo=UTC)
            tokens = {d: [signed_proof(console.device_keys[d], d, proof_record(
                f"e-{i}", scheduled=t0 + timedelta(minutes=i))) for i in range(n // 2)]
                for d in ("dev-0001", "dev-0002")}
            engine = store.open_db(store.resolve_url(db_url, workdir))

            def stored() -> int:
                with engine.connect() as conn:
                    return int(conn.execute(select(func.count()).select_from(
                        schema.proofs)).scalar_one())

            async def send(dev: str) -> None:
                # paho allows 20 unacknowledged publishes by default: the bench
                # must measure the collector, not this publisher's window.
                async with mqtt_client(broker, dev, max_inflight_messages=1000, timeout=300) as c:
                    # In windows of 200: aiomqtt's bookkeeping of pending publishes is
                    # quadratic, and this publisher shares the two cores with the collector.
                    for i in range(0, len(tokens[dev]), 200):
                        await asyncio.gather(*(c.publish(f"tcs/v1/dev/{dev}/proof", t, qos=1)
                                               for t in tokens[dev][i:i + 200]))

            assert col.proc is not None
            cpu0 = cpu_seconds(col.proc.pid)
            start = time.perf_counter()
            await asyncio.gather(*(send(d) for d in tokens))
            published = time.perf_counter() - start
            await asyncio.to_thread(poll, "stored", stored, lambda k: k >= n, 600)
            wall = time.perf_counter() - start
            cpu = cpu_seconds(col.proc.pid) - cpu0
            engine.dispose()
        finally:
            col.kill()
    finally:
        broker.stop()
    window = "default 20" if inflight is None else str(inflight)
    print(f"  end to end (Mosquitto max_inflight_messages {window} -> collect, QoS 1 proofs, "
          f"PUBACK after commit): {n} in "
          f"{wall:.2f} s -> {n / wall:,.0f} msg/s (publishers done after {published:.2f} s); "
          f"collector CPU {cpu:.2f} s -> {n / cpu:,.0f} msg per collector CPU-second")
    return n / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=40000)
    ap.add_argument("--e2e", type=int, default=10000, help="proofs through the broker")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    msgs, keys = _messages(args.devices, args.messages)
    with tempfile.TemporaryDirectory(prefix="bench-central-") as tmp:
        work = Path(tmp)
        path = work / "central.db"
        print(f"SQLite ({args.devices} devices, half heartbeats, half proofs):")
        engine = store.open_db(f"sqlite:///{path}")
        pipeline(engine, msgs, keys)
        hb, pr = row_bytes(engine, path)
        engine.dispose()
        for i, inflight in enumerate((None, 1000)):
            asyncio.run(end_to_end(work / f"e2e-sqlite{i}", f"sqlite:///{work / f'e2e{i}.db'}",
                                   args.e2e, inflight))
        print(f"  bytes per row: heartbeat {hb:.0f}, proof {pr:.0f}")
        with postgres_cluster() as url:
            print("PostgreSQL 15:")
            engine = store.open_db(store.resolve_url(url, work))
            pipeline(engine, msgs, keys)
            hb_pg, pr_pg = row_bytes(engine, None)
            engine.dispose()
            for i, inflight in enumerate((None, 1000)):
                engine = store.open_db(store.resolve_url(url, work))
                with engine.begin() as conn:  # each run starts empty
                    conn.execute(schema.proofs.delete())
                engine.dispose()
                asyncio.run(end_to_end(work / f"e2e-pg{i}", url, args.e2e, inflight))
            print(f"  bytes per row: heartbeat {hb_pg:.0f}, proof {pr_pg:.0f}")
    for name, h, p in (("SQLite", hb, pr), ("PostgreSQL", hb_pg, pr_pg)):
        # Steady state per device: 14 days of raw heartbeats at 60 s (raw_days), and a
        # month of proofs at 4 occurrences a day; roll-ups are ~30 rows a month.
        raw = 14 * 1440 * h
        month = 30 * 4 * p
        print(f"{name}: per device, raw heartbeats kept 14 days {raw / 1e6:.2f} MB (bounded), "
              f"proofs {month / 1e3:.0f} kB per month (4 a day)")


if __name__ == "__main__":
    main()
