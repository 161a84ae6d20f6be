"""tcs-central report over 30 days x 5,000 devices on PostgreSQL (and SQLite).

    .venv/bin/python bench/bench_central_report.py [--devices 5000] [--days 30] [--sqlite]

Fills a private PostgreSQL cluster (tests/support/postgres.py) with a month of two
daily programmes per device (1% of occurrences never reported), daily heartbeat
roll-ups, the schedule command and one alert, then times `report --by device`
(CSV and HTML) and `--by day`. The fill is not timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.month import SCHEDULE_ARGS  # noqa: E402
from support.postgres import postgres_cluster  # noqa: E402

from agent.central import schema, store  # noqa: E402
from agent.central.acl import DeviceEntry  # noqa: E402
from agent.central.figures import compute  # noqa: E402
from agent.central.report_csv import render_csv  # noqa: E402
from agent.central.report_html import render_html  # noqa: E402

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TOKEN = "eyJhbGciOiJFZERTQSJ9." + "x" * 700 + ".sig"  # size of a real proof JWS


def fill(engine: Engine, devices: list[str], first: date, days: int) -> None:
    issued = datetime.combine(first - timedelta(days=1), datetime.min.time(), TZ)
    with engine.begin() as conn:
        conn.execute(schema.commands.insert(), [{
            "jti": "sched-1", "issued_ms": int(issued.timestamp() * 1000),
            "expires_ms": int(issued.timestamp() * 1000) + 300_000, "operator": "bench",
            "issuer": "vn-48", "kid": "k", "cmd": "schedule.set", "target_kind": "group",
            "target": "vn-48", "args": json.dumps(SCHEDULE_ARGS), "tamper": None}])
    n = 0
    for d in range(days):
        day = first + timedelta(days=d)
        proofs, rollups = [], []
        for i, dev in enumerate(devices):
            rollups.append({"device": dev, "day": day, "hb_count": 1440, "hb_buckets": 1440,
                            "last_bucket": 0})
            for item, hh, mm, played in (("morning", 5, 30, 600_000), ("evening", 21, 30,
                                                                       300_000)):
                n += 1
                if n % 100 == 0:
                    continue  # 1 % never reported
                at = int(datetime(day.year, day.month, day.day, hh, mm, tzinfo=TZ)
                         .timestamp() * 1000)
                proofs.append({
                    "device": dev, "proof_id": f"{item}@{day}", "kind": "audio",
                    "subject_id": item, "outcome": "completed", "reason": None, "at_ms": at,
                    "scheduled_ms": at, "started_ms": at + (i % 7) * 100, "ended_ms": at + played,
                    "played_ms": played, "volume": 80, "level_dbfs": -20.0, "heard_dbfs": None,
                    "received_ms": at + played + 1000, "token": TOKEN})
        with engine.begin() as conn:
            conn.execute(schema.proofs.insert(), proofs)
            conn.execute(schema.device_days.insert(), rollups)


def run(url: str, n_devices: int, days: int) -> None:
    engine = store.open_db(url)
    devices = [f"dev-{i:05d}" for i in range(n_devices)]
    entries = [DeviceEntry(d, ("vn-48", f"vn-48-{i % 50:03d}")) for i, d in enumerate(devices)]
    first = date(2026, 11, 1)
    last = first + timedelta(days=days - 1)
    t0 = time.perf_counter()
    fill(engine, devices, first, days)
    print(f"  fill: {time.perf_counter() - t0:.1f} s (not part of the report time)")
    for by, fmt in (("device", "csv"), ("device", "html"), ("group", "csv"), ("day", "csv")):
        t0, c0 = time.perf_counter(), time.process_time()
        report = compute(engine, entries, first, last, TZ, by, 60)
        text = render_csv(report) if fmt == "csv" else render_html(report)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"  report --by {by} --format {fmt}: {wall:.2f} s wall, {cpu:.2f} s CPU "
              f"({len(report.rows)} rows, "
              f"{len(report.not_played)} not played, {len(text) / 1e6:.1f} MB)")
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--sqlite", action="store_true", help="also on SQLite")
    args = ap.parse_args()
    with postgres_cluster() as url:
        print(f"PostgreSQL 15, {args.devices} devices x {args.days} days:")
        run(store.resolve_url(url, Path(".")), args.devices, args.days)
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"SQLite, {args.devices} devices x {args.days} days:")
            run(f"sqlite:///{tmp}/central.db", args.devices, args.days)


if __name__ == "__main__":
    main()
