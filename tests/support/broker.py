"""A real Mosquitto for tests, and aiomqtt clients that log in to it as a given user.

    from support.broker import Broker, DeviceEntry, mqtt_client, before_marker, next_message

    async with mqtt_client(broker, "dev-0001", clean_start=False, session_expiry=86400) as c:
        await c.subscribe("tcs/v1/dev/dev-0001/cmd", qos=1)
        msg = await next_message(c, timeout=3)

The broker itself is scripts/devbroker.py (the same code the demo and developers use);
the `broker` / `broker_factory` fixtures in tests/conftest.py start it.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiomqtt
import anyio
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support.scripts import load_script

from agent.central.acl import DeviceEntry

__all__ = [
    "DEFAULT_CONSOLE",
    "DEFAULT_DEVICES",
    "Broker",
    "DeviceEntry",
    "before_marker",
    "mqtt_client",
    "next_message",
    "start_broker",
    "tls_context",
]

# scripts/ is not a package; load the one implementation by path, once.
_devbroker = load_script("devbroker")
Broker = _devbroker.Broker
start_broker = _devbroker.start_broker

DEFAULT_DEVICES = (
    DeviceEntry("dev-0001", ("vn-48", "vn-48-490", "vn-48-490-20194")),
    DeviceEntry("dev-0002", ("vn-48", "vn-48-491")),
)
DEFAULT_CONSOLE = ("central",)


def tls_context(broker: Any, user: str | None = None, *, trust_ca: bool = True) -> ssl.SSLContext:
    """TLS context verifying the broker's cert (or, trust_ca=False, only the system CAs);
    with `user`, presenting that user's client certificate (mTLS)."""
    ctx = ssl.create_default_context(cafile=str(broker.ca_file) if trust_ca else None)
    if user is not None:
        cert, key = broker.client_cert(user)
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


@asynccontextmanager
async def mqtt_client(
    broker: Any,
    user: str,
    *,
    password: str | None = None,
    identifier: str | None = None,
    mtls: bool = False,
    trust_ca: bool = True,
    clean_start: bool = True,
    session_expiry: int | None = None,
    keepalive: int = 10,
    timeout: float = 5.0,
    **kw: Any,
) -> AsyncIterator[aiomqtt.Client]:
    """An MQTT 5 client connected as `user` over TLS to `broker.hostname`.

    Password login on `broker.port` by default (the user's own password unless
    `password` is given); `mtls=True` logs in with the user's client certificate on
    `broker.mtls_port` instead. `identifier` defaults to the user (PROTOCOL §1).
    `clean_start=False` with `session_expiry` (seconds) gives a persistent session.
    Extra keyword arguments go to aiomqtt.Client (e.g. `will=`).
    """
    props = None
    if session_expiry is not None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry
    client = aiomqtt.Client(
        broker.hostname,
        broker.mtls_port if mtls else broker.port,
        username=None if mtls else user,
        password=None if mtls else (password if password is not None else broker.password(user)),
        identifier=identifier if identifier is not None else user,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=clean_start,
        properties=props,
        keepalive=keepalive,
        timeout=timeout,
        tls_context=tls_context(broker, user if mtls else None, trust_ca=trust_ca),
        **kw,
    )
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(client)
        except aiomqtt.MqttError:
            _ignore_closed_socket_race()
            raise
        yield client


def _ignore_closed_socket_race() -> None:
    """After a refused connection, ignore (on this loop, from now on) the one error of
    aiomqtt's that is not the test's: from paho's thread it asks the loop to watch the
    socket for writing (`call_soon_threadsafe(add_writer, fd)`), and when the broker
    refuses the TLS handshake the socket is closed before that runs, so add_writer
    raises EBADF in a loop callback, which anyio's runner reports as a failure of
    whatever test is running. Every other callback error still goes through."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    if getattr(previous, "_ignores_closed_socket_race", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno == errno.EBADF:
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    handler._ignores_closed_socket_race = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


async def before_marker(
    client: aiomqtt.Client, sender: aiomqtt.Client, topic: str, timeout: float = 10.0
) -> list[aiomqtt.Message]:
    """Every message `client` receives before a marker that `sender` publishes (QoS 1)
    to `topic`, one `client` may read: the proof that nothing else arrived.

    Mosquitto hands each subscriber its messages in the order it accepted them, and a
    QoS 1 publish has been accepted (and routed) once aiomqtt's `publish` returns, so a
    message that leaked would be queued before the marker. No listening window to guess:
    a loaded machine can neither make this pass early nor fail it."""
    marker = f"marker-{uuid.uuid4().hex}".encode()
    await sender.publish(topic, marker, qos=1)
    got: list[aiomqtt.Message] = []
    with anyio.move_on_after(timeout):
        async for message in client.messages:
            if message.payload == marker:
                return got
            got.append(message)
    raise AssertionError(f"the marker on {topic} did not arrive within {timeout} s: {got}")


async def next_message(client: aiomqtt.Client, timeout: float = 3.0) -> aiomqtt.Message:
    """The next message, or AssertionError naming the timeout."""
    with anyio.move_on_after(timeout):
        async for message in client.messages:
            return message
    raise AssertionError(f"no message arrived within {timeout} s")
