"""Acceptance of a real device: every --tamper is refused by a running tcs-agent with the
PROTOCOL §3 code it is named after, and an honest command is accepted."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.agentproc import AgentProc, TrustKey
from support.central import Console

from agent import jws
from agent.central.acl import load_devices
from agent.central.send import SendRequest, prepare, publish
from agent.central.sign import Tamper

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120), pytest.mark.slow]

EXPECTED: dict[Tamper, list[tuple[str, str | None]]] = {
    "signature": [("rejected", "bad_signature")],
    "expired": [("rejected", "expired")],
    "alg-none": [("rejected", "bad_alg")],
    "hs256": [("rejected", "bad_alg")],
    "wrong-aud": [("rejected", "wrong_audience")],
    "replay": [("accepted", None), ("rejected", "replayed")],
}


async def send(console: Console, tamper: Tamper | None, wait: float) -> tuple[int, list[Any]]:
    s = console.settings
    assert s.broker is not None and s.signing is not None and s.devices_file is not None
    request = SendRequest("device", "dev-0001", "volume.set", {"level": 30}, wait_ack_s=wait,
                          tamper=tamper, json_out=True)
    prepared = prepare(request, s.signing, jws.load_private_key(s.signing.key_file),
                       load_devices(s.devices_file), int(time.time()))
    out = io.StringIO()
    code = await publish(s.broker, request, prepared, out=out, err=io.StringIO())
    acks = [json.loads(x) for x in out.getvalue().splitlines()]
    return code, [(a["status"], a["code"]) for a in acks if "status" in a]


async def test_running_agent_refuses_every_tamper_with_its_code(
    broker: Any, console: Console, tmp_path: Path
) -> None:
    signing = console.settings.signing
    assert signing is not None
    trust = TrustKey(signing.kid, jws.load_private_key(signing.key_file), ("volume.set",), 100)
    with AgentProc.create(tmp_path / "dev", broker, "dev-0001",
                          ["vn-48", "vn-48-490", "vn-48-490-20194"], [trust]) as agent:
        # Until the agent has subscribed, a command to it is simply not delivered.
        deadline = time.monotonic() + 30
        while True:
            code, acks = await send(console, None, 1.0)
            if code == 0:
                break
            assert time.monotonic() < deadline, agent.output()[-2000:]
        assert acks == [("accepted", None)]
        results = {t: await send(console, t, 10.0) for t in EXPECTED}
    assert {t: acks for t, (_, acks) in results.items()} == EXPECTED
    assert all(code == 3 for code, _ in results.values())
