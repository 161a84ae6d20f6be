"""Wiring of the database commands of `tcs-central`: collect and report.

Kept apart from cli.py so the console's original commands and these grow
independently; cli.py registers them in one place (`add_parsers`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from agent.central.acl import DeviceEntry, load_devices
from agent.central.collector import Collector
from agent.central.command_log import from_token, record
from agent.central.figures import compute
from agent.central.history import load_history
from agent.central.ingest import IngestContext
from agent.central.proofs import enrolled_keys
from agent.central.report_csv import render_csv
from agent.central.report_html import render_html
from agent.central.retention import RetentionPolicy
from agent.central.send import Prepared, SendRequest
from agent.central.settings import CentralSettings
from agent.central.store import DEFAULT_DB_NAME, open_db, resolve_url
from agent.central.table import Board

AddCommon = Callable[..., None]


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help="sqlite:///PATH or postgresql://... (default [collector] db)")


def record_sent(settings: CentralSettings, request: SendRequest, prepared: Prepared) -> None:
    """With a database configured, record the command before it is published."""
    if settings.collector.db is None:
        return
    engine = database(settings)
    try:
        record(engine, from_token(prepared.tokens[0].token, request.target_kind,
                                  request.target, request.tamper))
    finally:
        engine.dispose()


def preload_board(settings: CentralSettings, board: Board) -> None:
    """`watch` starts full when a database is configured (or the default one exists)."""
    c = settings.collector
    if c.db is None and not (c.base / DEFAULT_DB_NAME).exists():
        return
    try:
        engine = database(settings)
    except ValueError as exc:  # the live view still works without its history
        sys.stderr.write(f"warning: no history: {exc}\n")
        return
    try:
        board.preload(load_history(engine), time.monotonic(), int(time.time() * 1000))
    finally:
        engine.dispose()


def add_parsers(sub: Any, add_common: AddCommon) -> None:
    cl = sub.add_parser("collect", help="store every device report in the database (runs "
                                        "until stopped)")
    add_common(cl, top=False)
    add_db_option(cl)
    rp = sub.add_parser("report", help="effectiveness report from the database")
    add_common(rp, top=False)
    add_db_option(rp)
    rp.add_argument("--from", dest="date_from", required=True, type=_date, metavar="DATE")
    rp.add_argument("--to", dest="date_to", required=True, type=_date, metavar="DATE",
                    help="last day included (YYYY-MM-DD, local days)")
    rp.add_argument("--by", choices=("device", "group", "day"), default="device")
    rp.add_argument("--format", choices=("html", "csv"), default="csv")
    rp.add_argument("--out", type=Path, metavar="FILE", help="default: standard output")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def database(settings: CentralSettings) -> Engine:
    """Open (and migrate) the configured database; ValueError names what failed."""
    c = settings.collector
    url = resolve_url(c.db, c.base)
    try:
        return open_db(url)
    except (OperationalError, OSError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"database {shown}: {first}") from None


def devices_of(settings: CentralSettings) -> list[DeviceEntry]:
    return [] if settings.devices_file is None else load_devices(settings.devices_file)


def run_collect(settings: CentralSettings) -> int:
    assert settings.broker is not None
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    devices = devices_of(settings)
    keys, problems = enrolled_keys(devices)
    for problem in problems:
        sys.stderr.write(f"warning: {problem}\n")
    if not keys:
        sys.stderr.write("warning: no enrolled device keys; every proof will be kept as "
                         "UNKNOWN and none counted\n")
    c = settings.collector
    tz = ZoneInfo(c.timezone)
    engine = database(settings)
    collector = Collector(
        settings.broker, engine, IngestContext(keys, tz, c.heartbeat_s),
        share_group=c.share_group, session_expiry_s=c.session_expiry_s,
        policy=RetentionPolicy(c.raw_days, c.keep_days, tz),
    )
    try:
        asyncio.run(collector.run())
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()
    return 0


def run_report(settings: CentralSettings, ns: argparse.Namespace) -> int:
    c = settings.collector
    tz = ZoneInfo(c.timezone)
    engine = database(settings)
    try:
        report = compute(engine, devices_of(settings), ns.date_from, ns.date_to, tz, ns.by,
                         c.heartbeat_s)
    finally:
        engine.dispose()
    text = render_csv(report) if ns.format == "csv" else render_html(report)
    if ns.out is None:
        sys.stdout.write(text)
    else:
        ns.out.write_text(text, encoding="utf-8")
    return 0
