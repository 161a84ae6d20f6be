"""A real agent against a real broker: forged, expired, replayed and misdirected
commands are rejected with their code, nothing is acted on, the agent keeps serving."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.agentproc import AgentProc, Province, TrustKey

from agent import jws

DEV = "dev-0001"
GROUPS = ["vn-48", "vn-48-490", "vn-48-490-20194"]
CMD = f"tcs/v1/dev/{DEV}/cmd"


@pytest.fixture
def keys() -> dict[str, TrustKey]:
    return {
        "province": TrustKey("vn-48-emergency"),
        # A commune operator: may schedule normal programmes and set volume, nothing louder.
        "commune": TrustKey(
            "vn-48-490-20194-op", commands=("schedule.set", "volume.set"), max_priority=49
        ),
    }


@pytest.fixture
def setup(
    tmp_path: Path, broker: Any, keys: dict[str, TrustKey]
) -> Iterator[tuple[AgentProc, Province]]:
    agent = AgentProc.create(tmp_path / "agent", broker, DEV, GROUPS, list(keys.values()))
    province = Province(broker, keys["province"])
    with agent:
        province.wait_for(lambda m: m.topic.endswith(f"{DEV}/state") and m.json()["online"], 15)
        yield agent, province
    province.close()


def volume_now(province: Province) -> int:
    """Ask the device for a heartbeat and read its master volume: what was acted on."""
    sent = time.time()
    jti = province.send(DEV, "status.request")
    province.wait_ack(jti)
    hb = province.wait_for(lambda m: m.topic.endswith(f"{DEV}/hb") and m.at >= sent, 10)
    return int(hb.json()["volume"])


def test_every_forgery_is_rejected_with_its_code_and_not_acted_on(
    setup: tuple[AgentProc, Province], keys: dict[str, TrustKey]
) -> None:
    agent, province = setup
    commune = keys["commune"]
    stranger = TrustKey("vn-48-emergency")  # same kid, different key: a forger
    unknown = TrustKey("vn-99-other")
    now = int(time.time())

    def forged_signature() -> tuple[str, str]:
        return province.token(DEV, "volume.set", {"level": 1}, key=stranger)

    def flipped_bit() -> tuple[str, str]:
        jti, tok = province.token(DEV, "volume.set", {"level": 2})
        h, p, s = tok.split(".")
        sig = bytearray(jws.b64url_decode(s))
        sig[5] ^= 0x01
        return jti, f"{h}.{p}.{jws.b64url_encode(bytes(sig))}"

    def alg(name: str) -> tuple[str, str]:
        jti, tok = province.token(DEV, "volume.set", {"level": 3})
        _, p, s = tok.split(".")
        header = jws.b64url_encode(
            json.dumps({"alg": name, "typ": "JWT", "kid": "vn-48-emergency"}).encode()
        )
        return jti, f"{header}.{p}.{s if name != 'none' else ''}"

    cases: list[tuple[str, tuple[str, str], str]] = [
        ("bad_signature", forged_signature(), CMD),
        ("bad_signature", flipped_bit(), CMD),
        ("bad_alg", alg("none"), CMD),
        ("bad_alg", alg("HS256"), CMD),
        ("unknown_key", province.token(DEV, "volume.set", {"level": 4}, key=unknown), CMD),
        ("expired", province.token(DEV, "volume.set", {"level": 5}, iat=now - 4000, ttl=600), CMD),
        # For dev-0002, arriving on our topic.
        ("wrong_audience", province.token("dev-0002", "volume.set", {"level": 6}), CMD),
        # Right audience claim, but for a group we are not in.
        ("wrong_audience", province.token("vn-48-491", "volume.set", {"level": 7}), CMD),
        # The commune key may not raise an emergency, nor use commands outside its scope.
        (
            "not_allowed",
            province.token(DEV, "alert.start", {"alert_id": "a", "text": "x"}, key=commune),
            CMD,
        ),
        ("not_allowed", province.token(DEV, "agent.restart", {}, key=commune), CMD),
        (
            "not_allowed",
            province.token(
                DEV,
                "schedule.set",
                {
                    "version": 9,
                    "items": [
                        {
                            "id": "loud",
                            "kind": "audio",
                            "start": "2026-11-24T05:30:00+07:00",
                            "priority": 80,
                            "media": [
                                {
                                    "url": "https://x/a.mp3",
                                    "sha256": "a" * 64,
                                    "size": 1,
                                    "type": "audio/mpeg",
                                }
                            ],
                        }
                    ],
                },
                key=commune,
            ),
            CMD,
        ),
        ("unknown_cmd", province.token(DEV, "siren.fire", {}), CMD),
        ("bad_args", province.token(DEV, "volume.set", {"level": 101}), CMD),
    ]
    for code, (jti, token), topic in cases:
        province.publish(topic, token)
        ack = province.wait_ack(jti, status="rejected", code=code)
        assert ack["detail"], ack
    # The jti and cmd are echoed even for rejected commands.
    assert all(a["cmd"] for a in province.acks() if a["status"] == "rejected")

    # Payloads that are not commands at all.
    garbage: list[bytes] = [
        b"\x00\xff garbage \x13",
        b"\xc3\x28.\xa0\xa1.\xe2\x28\xa1",  # invalid UTF-8
        province.token(DEV, "volume.set", {"level": 8})[1][:40].encode(),  # truncated
        b"a" * (300 * 1024),  # over 256 KiB
    ]
    for payload in garbage:
        province.publish(CMD, payload)
        time.sleep(1.1)  # unparseable payloads are acked at most once per second
    rejected_null = [a for a in province.acks() if a["jti"] is None]
    assert len(rejected_null) == len(garbage)
    assert all(a["code"] == "malformed" and a["status"] == "rejected" for a in rejected_null)

    # Nothing above was acted on, and the agent still serves.
    assert volume_now(province) == 100
    assert agent.proc is not None and agent.proc.poll() is None
    jti = province.send(DEV, "volume.set", {"level": 42})
    assert province.wait_ack(jti)["status"] == "accepted"
    assert volume_now(province) == 42


def test_replay_is_refused_also_after_a_restart(setup: tuple[AgentProc, Province]) -> None:
    agent, province = setup
    jti, token = province.token(DEV, "volume.set", {"level": 30})
    province.publish(CMD, token)
    assert province.wait_ack(jti, status="accepted")

    # The very same token again (a retained schedule seen twice) is a duplicate.
    province.publish(CMD, token)
    province.wait_ack(jti, status="duplicate")

    agent.stop()
    agent.start()
    province.wait_for(
        lambda m: (
            m.topic.endswith(f"{DEV}/state") and m.json()["online"] and m.at > time.time() - 5
        ),
        15,
    )
    # A different token reusing the accepted jti: the Dallas-2017 replay.
    _, replay = province.token(DEV, "volume.set", {"level": 99}, jti=jti)
    province.publish(CMD, replay)
    province.wait_ack(jti, status="rejected", code="replayed")
    province.publish(CMD, token)
    assert len([a for a in province.acks() if a["jti"] == jti and a["status"] == "duplicate"]) >= 1
    assert volume_now(province) == 30


def test_group_commands_reach_the_device_and_aud_must_match_topic(
    setup: tuple[AgentProc, Province],
) -> None:
    _, province = setup
    jti, token = province.token("vn-48-490", "volume.set", {"level": 55})
    province.publish("tcs/v1/grp/vn-48-490/cmd", token)
    assert province.wait_ack(jti)["status"] == "accepted"
    # A token for vn-48 published on vn-48-490's topic: audience mismatch.
    jti2, token2 = province.token("vn-48", "volume.set", {"level": 56})
    province.publish("tcs/v1/grp/vn-48-490/cmd", token2)
    province.wait_ack(jti2, status="rejected", code="wrong_audience")
    assert volume_now(province) == 55
