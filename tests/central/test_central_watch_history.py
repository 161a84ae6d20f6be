"""`watch` starts full: last seen, state and last proof come from the database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.records import proof_record, signed_proof

from agent import jws
from agent.central import store
from agent.central.acl import DeviceEntry
from agent.central.history import load_history
from agent.central.ingest import IngestContext, parse
from agent.central.table import Board
from agent.reports import dumps


def test_board_starts_with_last_seen_state_and_last_proof(tmp_path: Path) -> None:
    engine = store.open_db(f"sqlite:///{tmp_path / 'c.db'}")
    key = Ed25519PrivateKey.generate()
    ctx = IngestContext({"dev-0001": jws.public_raw(key)}, ZoneInfo("Asia/Ho_Chi_Minh"), 60)
    t0 = int(datetime(2026, 11, 3, tzinfo=UTC).timestamp() * 1000)
    msgs = [
        ("tcs/v1/dev/dev-0001/state", dumps({"online": True, "at": "2026-11-03T07:00:00+07:00",
                                             "agent_version": "0.1", "schedule_version": 4}),
         t0),
        ("tcs/v1/dev/dev-0001/hb", dumps({"seq": 1}), t0 + 60_000),
        ("tcs/v1/dev/dev-0001/proof", signed_proof(key, "dev-0001", proof_record(
            "p-1", subject="morning", scheduled=datetime(2026, 11, 3, tzinfo=UTC))), t0 + 1000),
        ("tcs/v1/dev/dev-0002/state", dumps({"online": False, "at": "2026-11-03T07:00:00+07:00",
                                             "agent_version": "0.1", "schedule_version": None}),
         t0),
    ]
    rows, hits = [], []
    for topic, payload, ms in msgs:
        parsed = parse(topic, payload, ms, ctx)
        rows += parsed.rows
        hits += parsed.hits
    store.write(engine, rows, hits)

    board = Board([DeviceEntry("dev-0001"), DeviceEntry("dev-0002")], {})
    board.preload(load_history(engine), now=1000.0, now_wall_ms=t0 + 60_000 + 125_000)
    lines = board.render(1000.0).splitlines()
    assert lines[0].split()[-2:] == ["LAST", "PROOF"]
    assert lines[1].split() == ["dev-0001", "online", "2m05s", "4", "-", "-", "-", "-",
                                "morning", "completed"]
    # Its last word was the Last Will, 3m05s before now.
    assert lines[2].split()[:3] == ["dev-0002", "OFFLINE", "3m05s"]
