"""PUBACK reason codes (issue 7 item 8): a publish the broker refuses (0x87 when its ACL
denies the topic) is not delivered, so the record stays in the outbox, is retried, and
one `publish_refused` event says so; fixed ACL, every record arrives. Real Mosquitto."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.acl import allow_all, deny_proofs
from support.agentproc import Province

from agent.db import open_db
from agent.jws import b64url_decode
from agent.link import Announcement, Link, LinkSettings, PublishRefused
from agent.outbox import Outbox
from agent.reporter import Reporter
from agent.reports import Topics

DEV = "dev-0001"


def _link(broker: Any) -> Link:
    settings = LinkSettings(
        client_id=DEV, host=broker.hostname, port=broker.port, tls=True, username=DEV,
        password=broker.password(DEV), ca_file=str(broker.ca_file), cert_file=None,
        key_file=None, keepalive_s=30, session_expiry_s=86400, connect_timeout_s=5,
    )  # fmt: skip

    async def ignore(_msg: Any) -> None:
        return None

    return Link(
        settings,
        subscriptions=[f"tcs/v1/dev/{DEV}/cmd"],
        announcement=Announcement(f"tcs/v1/dev/{DEV}/state", lambda: b"{}", b"{}"),
        on_message=ignore,
    )


def test_refused_proofs_are_kept_reported_once_and_delivered_after_the_fix(
    tmp_path: Path, broker: Any
) -> None:
    province = Province(broker)
    deny_proofs(broker)
    db = open_db(tmp_path / "state.db")
    outbox = Outbox(db, 64 * 1024 * 1024)
    reporter = Reporter(
        outbox, Topics(DEV), Ed25519PrivateKey.generate(), ZoneInfo("Asia/Ho_Chi_Minh")
    )
    link = _link(broker)

    async def scenario() -> None:
        tasks = [asyncio.create_task(link.run()), asyncio.create_task(reporter.pump(link))]
        try:
            await asyncio.wait_for(link.connected.wait(), 15)
            # The link itself reports the broker's verdict.
            try:
                await link.publish(f"tcs/v1/dev/{DEV}/proof", b"x", qos=1)
                raise AssertionError("a refused publish counted as delivered")
            except PublishRefused as exc:
                assert exc.code == 0x87
            for i in range(5):
                await reporter.proof({"id": f"p{i}", "item_id": "news", "outcome": "completed"})
            await reporter.ack(jti="j1", cmd="volume.set", status="accepted")
            # Other topics flow on while proofs are refused; one event names the cause.
            await asyncio.to_thread(
                province.wait_for, lambda m: m.topic.endswith("/ack"), 15
            )
            await asyncio.to_thread(
                province.wait_for,
                lambda m: m.topic.endswith("/event") and m.json()["code"] == "publish_refused",
                15,
            )
            # The ack and event reached the province before their PUBACKs reached the
            # agent: poll until the outbox has deleted them (the proofs stay).
            want = {"ack": 0, "event": 0, "proof": 5, "other": 0}
            deadline = asyncio.get_running_loop().time() + 15
            while (kinds := await asyncio.to_thread(outbox.count_by_kind)) != want:
                assert asyncio.get_running_loop().time() < deadline, kinds
                await asyncio.sleep(0.05)
            await asyncio.to_thread(allow_all, broker)
            await asyncio.to_thread(
                province.wait_for,
                lambda m: sum(x.topic.endswith("/proof") for x in province.messages) >= 5,
                90,
            )
            while await asyncio.to_thread(outbox.count):
                await asyncio.sleep(0.05)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await link.close()

    asyncio.run(scenario())
    events = [
        m.json() for m in province.messages
        if m.topic.endswith("/event") and m.json()["code"] == "publish_refused"
    ]  # fmt: skip
    assert len(events) == 1, events  # once per cause, not once per proof
    assert "0x87" in events[0]["detail"] and "/proof" in events[0]["detail"]
    ids = [
        json.loads(b64url_decode(m.payload.split(b".")[1]))["id"]
        for m in province.messages if m.topic.endswith("/proof")
    ]  # fmt: skip
    assert sorted(set(ids)) == [f"p{i}" for i in range(5)]
    province.close()
    db.close()


def test_no_matching_subscribers_is_a_success(broker: Any) -> None:
    """Mosquitto answers 0x10 when nobody subscribes: it has the message, so the
    record counts as delivered."""
    link = _link(broker)
    seen: list[int] = []

    async def scenario() -> None:
        task = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(link.connected.wait(), 15)
            inner = link._client._client  # type: ignore[union-attr]
            forward = inner.on_publish

            def spy(c: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
                seen.append(int(rc.value))
                forward(c, u, mid, rc, props)

            inner.on_publish = spy
            await link.publish(f"tcs/v1/dev/{DEV}/event", b"{}", qos=1)  # no exception
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await link.close()

    asyncio.run(scenario())
    assert seen == [0x10]
