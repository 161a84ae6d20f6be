"""The intake when the journal cannot be written, and the reporter when the outbox
cannot: commands are still obeyed, records still wait (bounded, proofs last)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import agent.reporter as reporter_mod
from agent.db import open_db
from agent.inbox import Inbox
from agent.intake import Intake
from agent.link import Incoming
from agent.outbox import Outbox
from agent.reporter import Reporter
from agent.reports import Topics

TOPIC = "tcs/v1/dev/dev-0001/cmd"


def test_unjournallable_command_is_pubacked_and_acted_on(tmp_path: Path) -> None:
    db = open_db(tmp_path / "state.db")
    inbox = Inbox(db)
    db.close()  # the journal now fails outright (not even memory)
    handled: list[bytes] = []
    acked: list[int] = []

    async def handle(topic: str, payload: bytes, resumed: bool) -> None:
        handled.append(payload)

    async def scenario() -> Intake:
        intake = Intake(inbox, handle, lambda m: acked.append(m.mid), frozenset([TOPIC]))
        runner = asyncio.create_task(intake.run())
        for mid in (1, 2):
            await intake.on_message(Incoming(TOPIC, f"cmd-{mid}".encode(), 1, False, mid))
        while len(handled) < 2:
            await asyncio.sleep(0.01)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return intake

    intake = asyncio.run(scenario())
    assert acked == [1, 2]  # PUBACKed: the broker will not loop redelivering them
    assert handled == [b"cmd-1", b"cmd-2"]  # and obeyed, in order
    assert intake.unjournalled == 2


def test_records_wait_in_memory_bounded_proofs_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reporter_mod, "HELD_MAX", 3)
    db = open_db(tmp_path / "state.db")
    outbox = Outbox(db, 1024 * 1024)
    db.close()  # the outbox now fails outright
    rep = Reporter(outbox, Topics("dev-0001"), Ed25519PrivateKey.generate(),
                   ZoneInfo("Asia/Ho_Chi_Minh"))  # fmt: skip

    async def scenario() -> None:
        await rep.proof({"id": "p1", "outcome": "completed"})
        await rep.ack(jti="j1", cmd="volume.set", status="accepted")
        await rep.proof({"id": "p2", "outcome": "completed"})
        await rep.event("warning", "x", "y")  # over the bound: the ack goes
        await rep.proof({"id": "p3", "outcome": "completed"})  # then the event

    asyncio.run(scenario())  # no exception reaches the callers
    assert rep.held() == 3 and rep.held_dropped == 2
    assert [k for k, _t, _p in rep._held] == ["proof", "proof", "proof"]
