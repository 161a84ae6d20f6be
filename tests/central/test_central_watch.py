"""watch against a real Mosquitto: retained online/offline, proofs verified, reconnects."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.broker import mqtt_client
from support.central import Console

from agent import jws
from agent.central.acl import load_devices
from agent.central.proofs import enrolled_keys
from agent.central.table import Board
from agent.central.watch import Printer, run_watch

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
ROOT = Path(__file__).resolve().parents[2]


def proof_token(key: Ed25519PrivateKey, item: str) -> str:
    claims: dict[str, Any] = {
        "id": f"p-{item}", "item_id": item, "kind": "audio", "media_sha256": [],
        "scheduled_at": None, "started_at": None, "ended_at": None, "played_ms": 0,
        "outcome": "completed",
    }
    return jws.sign_compact(key, {"alg": "EdDSA", "typ": "JWT", "kid": "dev-0001"}, claims)


class Watch:
    """run_watch in this event loop, printing JSON lines into a buffer."""

    def __init__(self, console: Console) -> None:
        s = console.settings
        assert s.broker is not None and s.devices_file is not None
        self.broker = s.broker
        devices = load_devices(s.devices_file)
        keys, problems = enrolled_keys(devices)
        assert problems == []
        self.out, self.err = io.StringIO(), io.StringIO()
        self.printer = Printer(Board(devices, keys), self.out, self.err, tty=False,
                               json_out=True)
        self.connects = 0
        self.task: asyncio.Task[int] | None = None

    def _subscribed(self) -> None:
        self.connects += 1

    def start(self) -> None:
        self.task = asyncio.ensure_future(
            run_watch(self.broker, self.printer.board, self.printer,
                      on_subscribed=self._subscribed))

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.out.getvalue().splitlines()]

    async def until(self, what: str, pred: Callable[[], bool], timeout: float = 10) -> None:
        with anyio.move_on_after(timeout):
            while not pred():
                await asyncio.sleep(0.05)
            return
        raise AssertionError(f"{what} within {timeout} s; output:\n{self.out.getvalue()}"
                             f"\nstderr:\n{self.err.getvalue()}")

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


async def test_watch_shows_retained_online_offline_and_flags_a_forged_proof(
    broker: Any, console: Console
) -> None:
    async with mqtt_client(broker, "dev-0001") as d1, mqtt_client(broker, "dev-0002") as d2:
        await d1.publish("tcs/v1/dev/dev-0001/state", json.dumps(
            {"online": True, "at": "2026-11-23T10:00:00.000+07:00", "agent_version": "0.1.0",
             "schedule_version": 42}), qos=1, retain=True)
        # What dev-0002's Last Will leaves behind after a power cut.
        await d2.publish("tcs/v1/dev/dev-0002/state", json.dumps(
            {"online": False, "at": "2026-11-23T09:00:00.000+07:00", "agent_version": "0.1.0",
             "schedule_version": None}), qos=1, retain=True)
        watch = Watch(console)
        watch.start()
        try:
            await watch.until("both retained states", lambda: len(
                [x for x in watch.lines() if x["kind"] == "state"]) == 2)
            rows = watch.printer.board.render(0).splitlines()
            assert rows[1].split()[:4] == ["dev-0001", "online", "-", "42"]
            assert rows[2].split()[:2] == ["dev-0002", "OFFLINE"]

            await d1.publish("tcs/v1/dev/dev-0001/proof",
                             proof_token(console.device_keys["dev-0001"], "genuine"), qos=1)
            await d1.publish("tcs/v1/dev/dev-0001/proof",
                             proof_token(Ed25519PrivateKey.generate(), "forged"), qos=1)
            await watch.until("two proofs", lambda: len(
                [x for x in watch.lines() if x["kind"] == "proof"]) == 2)
        finally:
            await watch.stop()
    proofs = {x["proof"]["item_id"]: x for x in watch.lines() if x["kind"] == "proof"}
    assert proofs["genuine"]["verdict"] == "VERIFIED" and not proofs["genuine"]["loud"]
    assert proofs["forged"]["verdict"] == "FORGED" and proofs["forged"]["loud"]
    assert "!!!" in proofs["forged"]["text"]


async def test_watch_reconnects_after_the_broker_restarts(broker: Any, console: Console) -> None:
    watch = Watch(console)
    watch.start()
    try:
        await watch.until("first connect", lambda: watch.connects == 1)
        await anyio.to_thread.run_sync(broker.restart)
        await watch.until("reconnect", lambda: watch.connects == 2, timeout=20)
        async with mqtt_client(broker, "dev-0001") as d1:
            await d1.publish("tcs/v1/dev/dev-0001/hb", json.dumps(
                {"seq": 9, "schedule_version": 3, "playing": None, "alert_id": None,
                 "volume": 55, "outbox": 0}), qos=0)
            await watch.until("heartbeat after reconnect", lambda: any(
                x["kind"] == "hb" for x in watch.lines()))
    finally:
        await watch.stop()
    assert "lost" in watch.err.getvalue()
    assert watch.printer.board.render(0).splitlines()[1].split()[6] == "55"


async def test_cli_watch_prints_plain_lines_and_a_final_table(
    broker: Any, console: Console
) -> None:
    async with mqtt_client(broker, "dev-0001") as d1:
        await d1.publish("tcs/v1/dev/dev-0001/state", json.dumps(
            {"online": True, "at": "x", "schedule_version": 5}), qos=1, retain=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.central.cli", "-c", str(console.config), "watch",
        "--duration", "3", cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "\x1b[" not in text  # not a TTY: no screen redraws
    assert any(line.startswith("dev-0001 status=online") and "sched=5" in line
               for line in text.splitlines())
    table = text.split("\n\n")[-1].splitlines()
    assert table[0].split()[0] == "DEVICE"
    assert table[2].split()[:2] == ["dev-0002", "?"]
