"""send against a real Mosquitto: what devices receive, and how acks are reported."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from support.broker import before_marker, mqtt_client, next_message
from support.central import Console

from agent import jws
from agent.central.acl import load_devices
from agent.central.send import SendRequest, prepare, publish
from agent.central.sign import decode_unverified, verify_eddsa

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
ROOT = Path(__file__).resolve().parents[2]


async def run_cli(*argv: str, timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.central.cli", *argv, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def in_process(
    console: Console, request: SendRequest
) -> tuple[int, str, list[dict[str, Any]]]:
    s = console.settings
    assert s.broker is not None and s.signing is not None and s.devices_file is not None
    prepared = prepare(request, s.signing, jws.load_private_key(s.signing.key_file),
                       load_devices(s.devices_file), int(time.time()))
    out, err = io.StringIO(), io.StringIO()
    code = await publish(s.broker, request, prepared, out=out, err=err)
    return code, err.getvalue(), [json.loads(x) for x in out.getvalue().splitlines()]


async def test_cli_send_reaches_the_device_and_verifies_with_the_trust_key(
    broker: Any, console: Console
) -> None:
    async with mqtt_client(broker, "dev-0001") as dev:
        await dev.subscribe("tcs/v1/dev/dev-0001/cmd", qos=1)
        code, out, err = await run_cli("-c", str(console.config), "send", "--device",
                                       "dev-0001", "alert.start", "--set", "alert_id=storm-3",
                                       "--set", "text=Bão số 3", "--ttl", "120")
        assert code == 0, err
        msg = await next_message(dev, timeout=5)
    assert isinstance(msg.payload, bytes)
    claims = verify_eddsa(msg.payload.decode(), console.trust_public)
    assert claims is not None
    header, _, _ = decode_unverified(msg.payload.decode())
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": "vn-48-emergency"}
    assert claims["iss"] == "vn-48" and claims["aud"] == "dev-0001"
    assert claims["cmd"] == "alert.start"
    assert claims["args"] == {"alert_id": "storm-3", "text": "Bão số 3"}
    assert claims["exp"] - claims["iat"] == 120 and abs(claims["iat"] - time.time()) < 30
    assert f"jti {claims['jti']}" in out.splitlines()


async def test_group_send_reaches_members_and_not_others(broker: Any, console: Console) -> None:
    async with mqtt_client(broker, "dev-0001") as d1, mqtt_client(broker, "dev-0002") as d2:
        await d1.subscribe("tcs/v1/grp/vn-48-490/cmd", qos=1)
        # dev-0002 listens everywhere it legitimately may, and on the group it is not in.
        for topic in ("tcs/v1/dev/dev-0002/cmd", "tcs/v1/grp/vn-48/cmd",
                      "tcs/v1/grp/vn-48-491/cmd", "tcs/v1/grp/vn-48-490/cmd"):
            await d2.subscribe(topic, qos=1)
        code, _, lines = await in_process(console, SendRequest(
            "group", "vn-48-490", "volume.set", {"level": 40}, json_out=True))
        assert code == 0
        msg = await next_message(d1, timeout=5)
        assert isinstance(msg.payload, bytes)
        claims = verify_eddsa(msg.payload.decode(), console.trust_public)
        assert claims is not None and claims["aud"] == "vn-48-490"
        assert lines[0]["sent"]["jti"] == claims["jti"]
        # The broker takes the console's user name as its client id: the marker's sender
        # connects once the send's own connection is gone.
        async with mqtt_client(broker, "central") as province:
            assert await before_marker(d2, province, "tcs/v1/dev/dev-0002/cmd") == []


async def _fake_device(client: aiomqtt.Client, replies: list[dict[str, Any]]) -> str:
    """Answer the next command like a device would, with the given ack statuses."""
    msg = await next_message(client, timeout=10)
    assert isinstance(msg.payload, bytes)
    _, claims, _ = decode_unverified(msg.payload.decode())
    for reply in replies:
        ack = {"jti": claims["jti"], "cmd": claims["cmd"], "code": None, "detail": None,
               "at": "2026-11-23T10:00:00.000+07:00", **reply}
        await client.publish("tcs/v1/dev/dev-0001/ack", json.dumps(ack), qos=1)
    return str(claims["jti"])


async def test_cli_wait_ack_prints_accepted_then_done(broker: Any, console: Console) -> None:
    async with mqtt_client(broker, "dev-0001") as dev:
        await dev.subscribe("tcs/v1/dev/dev-0001/cmd", qos=1)
        # An unrelated ack for another jti must not be mistaken for ours.
        await dev.publish("tcs/v1/dev/dev-0001/ack", json.dumps(
            {"jti": "someone-else", "status": "rejected"}), qos=1)
        cli = asyncio.ensure_future(run_cli(
            "-c", str(console.config), "send", "--device", "dev-0001", "alert.start",
            "--args", '{"alert_id": "a1", "text": "x"}', "--wait-ack", "15"))
        jti = await _fake_device(dev, [{"status": "accepted"}, {"status": "done"}])
        code, out, err = await cli
    assert code == 0, err
    lines = out.splitlines()
    assert f"jti {jti}" in lines
    acks = [x for x in lines if x.startswith("ack ")]
    assert acks == [f"ack dev-0001 ACCEPTED cmd=alert.start jti={jti}",
                    f"ack dev-0001 DONE cmd=alert.start jti={jti}"]


async def test_wait_ack_rejection_exits_3_with_json_lines(broker: Any, console: Console) -> None:
    async with mqtt_client(broker, "dev-0001") as dev:
        await dev.subscribe("tcs/v1/dev/dev-0001/cmd", qos=1)
        sender = asyncio.ensure_future(in_process(console, SendRequest(
            "device", "dev-0001", "volume.set", {"level": 5}, wait_ack_s=10,
            tamper="signature", json_out=True)))
        jti = await _fake_device(dev, [{"status": "rejected", "code": "bad_signature"}])
        code, _, lines = await sender
    assert code == 3
    assert lines[0]["sent"]["tamper"] == "signature"
    assert lines[1]["device"] == "dev-0001" and lines[1]["jti"] == jti
    assert (lines[1]["status"], lines[1]["code"]) == ("rejected", "bad_signature")


async def test_wait_ack_without_any_ack_exits_4(broker: Any, console: Console) -> None:
    code, err, _ = await in_process(console, SendRequest(
        "device", "dev-0001", "status.request", {}, wait_ack_s=1.0, json_out=True))
    assert code == 4 and "no ack from dev-0001 within 1 s" in err


async def test_replay_tamper_sends_the_same_jti_twice_as_different_tokens(
    broker: Any, console: Console
) -> None:
    async with mqtt_client(broker, "dev-0001") as dev:
        await dev.subscribe("tcs/v1/dev/dev-0001/cmd", qos=1)
        code, _, lines = await in_process(console, SendRequest(
            "device", "dev-0001", "volume.set", {"level": 5}, tamper="replay", json_out=True))
        assert code == 0
        first = await next_message(dev, timeout=5)
        second = await next_message(dev, timeout=5)
    tokens = [m.payload.decode() for m in (first, second) if isinstance(m.payload, bytes)]
    claims = [verify_eddsa(t, console.trust_public) for t in tokens]
    assert claims[0] is not None and claims[1] is not None
    assert tokens[0] != tokens[1] and claims[0]["jti"] == claims[1]["jti"]
    assert [x["sent"]["token"] for x in lines] == tokens


async def test_bad_config_lists_problems_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    config.write_text('[broker]\nurl = "ftp://x"\n[signing]\nkid = "k"\n')
    code, _, err = await run_cli("-c", str(config), "send", "--device", "dev-0001",
                                 "status.request")
    assert code == 2
    assert f"{config}:broker.url: scheme must be mqtt:// or mqtts://" in err
    assert f"{config}:signing.key_file: is required" in err


async def test_retained_schedule_reaches_a_device_that_subscribes_later(
    broker: Any, console: Console
) -> None:
    code, _, lines = await in_process(console, SendRequest(
        "group", "vn-48-490-20194", "schedule.set", {"version": 3, "items": []}, retain=True,
        json_out=True))
    assert code == 0
    async with mqtt_client(broker, "dev-0001") as dev:
        await dev.subscribe("tcs/v1/grp/vn-48-490-20194/cmd", qos=1)
        msg = await next_message(dev, timeout=5)
    assert msg.retain and isinstance(msg.payload, bytes)
    assert msg.payload.decode() == lines[0]["sent"]["token"]
