"""`tcs-central send`: sign a command, publish it, optionally wait for the acks."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.central.acks import AckTracker
from agent.central.acl import DeviceEntry
from agent.central.mqtt import device_topic, group_topic, make_client
from agent.central.settings import BrokerSettings, SigningSettings
from agent.central.sign import (
    KNOWN_COMMANDS,
    SignedCommand,
    Tamper,
    build_claims,
    make_tokens,
    new_jti,
)

EXIT_BROKER = 1


@dataclass(frozen=True)
class SendRequest:
    target_kind: Literal["device", "group"]
    target: str
    cmd: str
    args: dict[str, Any]
    ttl_s: int = 300
    jti: str | None = None
    retain: bool = False
    qos: int = 1
    wait_ack_s: float | None = None
    tamper: Tamper | None = None
    json_out: bool = False


@dataclass(frozen=True)
class Prepared:
    topic: str
    jti: str
    tokens: list[SignedCommand]
    ack_topics: list[str]
    expected: frozenset[str] | None  # devices that should ack; None: unknown
    notes: list[str]  # for stderr: things the operator should know


def _other_audience(target: str, devices: Sequence[DeviceEntry]) -> str:
    for dev in devices:
        if dev.id != target:
            return dev.id
    # Still a syntactically valid id, so only the audience check can refuse it.
    return ("not-" + target)[:64]


def prepare(
    request: SendRequest, signing: SigningSettings, key: Ed25519PrivateKey,
    devices: Sequence[DeviceEntry] | None, now: int,
) -> Prepared:
    """Everything to publish and to wait for; pure apart from the random jti."""
    notes: list[str] = []
    if request.cmd not in KNOWN_COMMANDS:
        notes.append(f"warning: {request.cmd!r} is not in the catalogue; "
                     "devices will reject it (unknown_cmd)")
    jti = request.jti or new_jti()
    claims = build_claims(iss=signing.issuer, aud=request.target, cmd=request.cmd,
                          args=request.args, now=now, ttl_s=request.ttl_s, jti=jti)
    tokens = make_tokens(key, signing.kid, claims, request.tamper,
                         other_aud=_other_audience(request.target, devices or ()))
    if request.target_kind == "device":
        topic = device_topic(request.target, "cmd")
        expected: frozenset[str] | None = frozenset({request.target})
        ack_topics = [device_topic(request.target, "ack")]
    else:
        topic = group_topic(request.target, "cmd")
        members = frozenset(d.id for d in devices or () if request.target in d.groups)
        if devices is None:
            notes.append("no devices file: listening to every device's acks until the deadline")
        elif not members:
            notes.append(f"no enrolled device is in group {request.target}: "
                         "listening to every device's acks until the deadline")
        expected = members or None
        ack_topics = ([device_topic(d, "ack") for d in sorted(members)] if members
                      else [device_topic("+", "ack")])
    return Prepared(topic, jti, tokens, ack_topics, expected, notes)


def _emit(out: TextIO, request: SendRequest, text: str, data: dict[str, Any]) -> None:
    out.write((json.dumps(data, ensure_ascii=False) if request.json_out else text) + "\n")
    out.flush()


async def _collect(client: aiomqtt.Client, tracker: AckTracker, request: SendRequest,
                   out: TextIO, wait_s: float) -> None:
    try:
        async with asyncio.timeout(wait_s):
            async for message in client.messages:
                device = str(message.topic).split("/")[3]
                payload = message.payload
                if not isinstance(payload, bytes | bytearray):
                    continue
                ack = tracker.add(device, bytes(payload))
                if ack is not None:
                    _emit(out, request, ack.line(), {"device": device, **ack.data})
                if tracker.complete():
                    return
    except TimeoutError:
        return


async def publish(broker: BrokerSettings, request: SendRequest, prepared: Prepared,
                  out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Publish the token(s); with `wait_ack_s`, print acks and return the exit code."""
    for note in prepared.notes:
        err.write(note + "\n")
    tracker = AckTracker(prepared.jti, request.cmd, prepared.expected,
                         tokens=len(prepared.tokens))
    connected = False
    try:
        async with make_client(broker) as client:
            connected = True
            if request.wait_ack_s is not None:
                # Subscribe first: an ack can arrive before our publish returns.
                await client.subscribe([(t, 1) for t in prepared.ack_topics])
            for signed in prepared.tokens:
                await client.publish(prepared.topic, signed.token, qos=request.qos,
                                     retain=request.retain)
                flags = f"qos {request.qos}" + (", retained" if request.retain else "")
                note = f" [{signed.note}]" if signed.note else ""
                _emit(out, request,
                      f"jti {prepared.jti}\nsent {request.cmd} to {prepared.topic} ({flags}){note}",
                      {"sent": {"jti": prepared.jti, "cmd": request.cmd,
                                "topic": prepared.topic, "tamper": request.tamper,
                                "note": signed.note or None, "token": signed.token}})
            if request.wait_ack_s is None:
                return 0
            await _collect(client, tracker, request, out, request.wait_ack_s)
    except aiomqtt.MqttError as exc:
        err.write(f"error: broker {broker.url}: {exc}\n")
        if connected:
            err.write(f"error: connection lost; is another client logged in as "
                      f"{broker.client_id!r} (a running watch)? The broker allows one "
                      "connection per user.\n")
        return EXIT_BROKER
    for device in tracker.missing():
        err.write(f"no ack from {device} within {request.wait_ack_s:g} s\n")
    for device in tracker.running():
        err.write(f"{device}: accepted, not yet done after {request.wait_ack_s:g} s\n")
    if not tracker.devices and prepared.expected is None:
        err.write(f"no ack within {request.wait_ack_s:g} s\n")
    return tracker.exit_code()
