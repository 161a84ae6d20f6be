"""The reporter in front of the outbox: a full card degrades to a log line, never a
crash; records are signed and ordered."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.db import open_db
from agent.outbox import Outbox
from agent.reporter import Reporter
from agent.reports import Topics


def test_full_disk_does_not_stop_the_reporter(tmp_path: Path) -> None:
    db = open_db(tmp_path / "state.db")
    outbox = Outbox(db, 64 * 1024 * 1024)
    key = Ed25519PrivateKey.generate()
    reporter = Reporter(outbox, Topics("dev-0001"), key, ZoneInfo("Asia/Ho_Chi_Minh"))

    async def scenario() -> None:
        await reporter.proof({"id": "p1", "item_id": "news", "outcome": "completed"})
        with db.read() as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        for _ in range(50):  # the card fills up: no exception reaches the caller
            await reporter.event("warning", "test", os.urandom(2000).hex())
        await reporter.ack(jti="j1", cmd="volume.set", status="accepted")

    asyncio.run(scenario())
    first = outbox.pending(1)[0]
    assert first.kind == "proof"
    h, p, s = first.payload.decode().split(".")
    assert jws.verify_ed25519(jws.public_raw(key), f"{h}.{p}".encode(), jws.b64url_decode(s))
    assert json.loads(jws.b64url_decode(p))["item_id"] == "news"
    assert json.loads(jws.b64url_decode(h))["kid"] == "dev-0001"
    db.close()
