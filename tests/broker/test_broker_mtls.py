"""The mTLS listener: the client certificate is the identity, and the ACL still holds."""

from __future__ import annotations

from typing import Any

import aiomqtt
import anyio
import pytest
from support.broker import before_marker, mqtt_client, next_message, tls_context

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_device_cert_gets_its_own_commands_and_not_others(broker: Any) -> None:
    async with (
        mqtt_client(broker, "central", mtls=True) as console,
        mqtt_client(broker, "dev-0001", mtls=True) as dev1,
    ):
        await dev1.subscribe([("tcs/v1/dev/+/cmd", 1), ("tcs/v1/grp/+/cmd", 1)])
        await console.publish("tcs/v1/dev/dev-0002/cmd", b"for-2", qos=1)
        await console.publish("tcs/v1/grp/vn-48-491/cmd", b"for-491", qos=1)
        await console.publish("tcs/v1/dev/dev-0001/cmd", b"for-1", qos=1)
        got = [await next_message(dev1)]
        got += await before_marker(dev1, console, "tcs/v1/dev/dev-0001/cmd")
        assert [(str(m.topic), m.payload) for m in got] == [("tcs/v1/dev/dev-0001/cmd", b"for-1")]


async def test_certificate_identity_overrides_a_claimed_username(broker: Any) -> None:
    # dev-0001's certificate, but claiming to be the console with its real password:
    # the broker must treat it as dev-0001, which may not publish commands.
    ctx_kw: dict[str, Any] = {"username": "central", "password": broker.password("central")}
    client = aiomqtt.Client(
        broker.hostname,
        broker.mtls_port,
        identifier="central",
        protocol=aiomqtt.ProtocolVersion.V5,
        keepalive=10,
        timeout=5,
        tls_context=tls_context(broker, "dev-0001"),
        **ctx_kw,
    )
    async with (
        client as fake,
        mqtt_client(broker, "dev-0002") as dev2,
        mqtt_client(broker, "central") as console,
    ):
        await dev2.subscribe("tcs/v1/dev/dev-0002/cmd", qos=1)
        await fake.publish("tcs/v1/dev/dev-0002/cmd", b"forged", qos=1)
        await fake.publish("tcs/v1/dev/dev-0001/state", b"own-state", qos=1)
        assert await before_marker(dev2, console, "tcs/v1/dev/dev-0002/cmd") == []


async def test_mtls_listener_refuses_a_client_without_certificate(broker: Any) -> None:
    client = aiomqtt.Client(
        broker.hostname,
        broker.mtls_port,
        username="dev-0001",
        password=broker.password("dev-0001"),
        protocol=aiomqtt.ProtocolVersion.V5,
        keepalive=10,
        timeout=2,
        tls_context=tls_context(broker, None),
    )
    with anyio.fail_after(5), pytest.raises(aiomqtt.MqttError):
        async with client:
            pass
