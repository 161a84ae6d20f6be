"""The MQTT link to the province (PROTOCOL §1-§2), behind the project's own small interface.

Why a wrapper: aiomqtt is pinned to 2.x (3.x changes the API and turns keepalive
off by default), and everything the protocol demands of a session lives here
in one place: explicit keepalive, a persistent session (clean start off, session
expiry >= 1 day) so QoS 1 commands sent while we were away still arrive, a
retained `state` announcement on every connect with the offline twin as Last Will,
re-subscription on every connect (a broker that lost our session must not leave
us deaf), manual PUBACK so a command is journalled before the broker forgets it,
and reconnection forever with full-jitter exponential back-off (tenacity) so a
province's devices do not return in lock-step after a broker restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 60.0


@dataclass(frozen=True)
class LinkSettings:
    """What the link needs to know, taken from the validated config by the service."""

    client_id: str
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    keepalive_s: int
    session_expiry_s: int
    connect_timeout_s: float


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int


@dataclass(frozen=True)
class Announcement:
    """A retained message published on connect, with its Last-Will twin."""

    topic: str
    online: Callable[[], bytes]  # built fresh on every connect
    offline: bytes


class NotConnected(Exception):
    pass


class PublishRefused(Exception):
    """The broker answered a QoS 1 publish with a failure reason code (MQTT 5, >= 0x80),
    e.g. 0x87 "Not authorized" (ACL) or 0x95 "Packet too large": it did NOT take it."""

    def __init__(self, topic: str, code: int, reason: str) -> None:
        super().__init__(f"{topic}: broker refused the publish: 0x{code:02x} {reason}")
        self.topic = topic
        self.code = code
        self.reason = reason


class _ConnectFailed(Exception):
    """Raised for a connection attempt that never came up; retried with back-off."""


# OpenSSL's X509_V_FLAG_NO_CHECK_TIME (not exported by the ssl module; the flags
# word is passed through to X509_VERIFY_PARAM_set_flags as is).
X509_V_FLAG_NO_CHECK_TIME = 0x200000


def tls_context(settings: LinkSettings, *, check_time: bool = True) -> ssl.SSLContext | None:
    """The client TLS context: the broker's chain and name are always verified.

    `check_time=False` skips only the certificates' validity dates. A Pi without an
    RTC can boot in 1970 (or on fake-hwclock's weeks-old time) and, where NTP is
    blocked, would otherwise never reach the province that could vouch for the time.
    Commands are signed end to end anyway, so TLS is not what makes them genuine.
    """
    if not settings.tls:
        return None
    # Server verification is always on: a hijacked PA system is one bad cert away.
    ctx = ssl.create_default_context(cafile=settings.ca_file)
    if not check_time:
        ctx.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
    if settings.cert_file and settings.key_file:
        ctx.load_cert_chain(settings.cert_file, settings.key_file)
    return ctx


class Link:
    """Holds one MQTT session at a time, forever. `run()` is the only long-lived call."""

    def __init__(
        self,
        settings: LinkSettings,
        *,
        subscriptions: Sequence[str],
        announcement: Announcement,
        on_message: Callable[[Incoming], Awaitable[None]],
        on_connect: Callable[[], Awaitable[None]] | None = None,
        clock_trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        self._s = settings
        self._clock_trusted = clock_trusted
        self._untrusted_logged = False
        self._subscriptions = tuple(subscriptions)
        self._announcement = announcement
        self._on_message = on_message
        self._on_connect = on_connect
        self._client: aiomqtt.Client | None = None
        self._protocol = aiomqtt.ProtocolVersion.V5
        # QoS 1 publishes waiting for their PUBACK, by message id: aiomqtt 2.x drops the
        # PUBACK's reason code, so the link waits for it itself (see `publish`).
        self._pubacks: dict[int, asyncio.Future[tuple[int, str]]] = {}
        self.connected = asyncio.Event()
        self.connections = 0  # how many sessions came up (tests and heartbeat read it)

    # -- public ---------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect; returns only when cancelled."""
        try:
            while True:
                retrying = AsyncRetrying(
                    wait=wait_random_exponential(multiplier=1, max=BACKOFF_CAP_S),
                    retry=retry_if_exception_type(_ConnectFailed),
                    before_sleep=self._log_retry,
                    reraise=True,
                )
                await retrying(self._session)
                # A session that was up and then dropped: the back-off starts again from
                # 1 s, but never at 0 s, so a fleet does not reconnect in one burst.
                await asyncio.sleep(random.uniform(0.0, 1.0))
        except asyncio.CancelledError:
            log.info("link to %s:%d stopped", self._s.host, self._s.port)
            raise

    def _log_retry(self, rs: Any) -> None:
        # The technician reading the journal needs where, why and when next.
        delay = rs.next_action.sleep if rs.next_action is not None else 0.0
        log.warning(
            "broker %s:%d unreachable (%s); attempt %d failed, next in %.1f s",
            self._s.host,
            self._s.port,
            rs.outcome.exception() if rs.outcome else "?",
            rs.attempt_number,
            delay,
        )

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish; for QoS 1, returns once the broker's PUBACK arrived and says success.

        Raises NotConnected when there is no session or the PUBACK does not come, and
        PublishRefused when the PUBACK carries a failure reason code (>= 0x80). 0x10
        "No matching subscribers" is a success: the broker has the message.
        """
        client = self._client
        if client is None or not self.connected.is_set():
            raise NotConnected(topic)
        inner: paho.Client = client._client
        info = inner.publish(topic, payload, qos, retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise NotConnected(f"{topic}: {paho.error_string(info.rc)}")
        if qos == 0:
            self._pubacks.pop(info.mid, None)  # QoS 0 "completes" inside publish()
            return
        fut = self._puback_future(info.mid)
        try:
            code, reason = await asyncio.wait_for(fut, timeout=self._s.connect_timeout_s)
        except TimeoutError as exc:
            raise NotConnected(f"{topic}: no PUBACK within {self._s.connect_timeout_s} s") from exc
        finally:
            self._pubacks.pop(info.mid, None)
        if code >= 0x80:
            raise PublishRefused(topic, code, reason)

    def _puback_future(self, mid: int) -> asyncio.Future[tuple[int, str]]:
        fut = self._pubacks.get(mid)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._pubacks[mid] = fut
        return fut

    def _on_publish(self, forward: Callable[..., None]) -> Callable[..., None]:
        """paho's on_publish, wrapped: keep the PUBACK's reason code, then let aiomqtt
        do its own bookkeeping. Runs on the event loop (aiomqtt drives paho's socket)."""

        def on_publish(c: Any, userdata: Any, mid: int, reason_code: Any, props: Any) -> None:
            value = getattr(reason_code, "value", reason_code)
            code = int(value) if isinstance(value, int) else 0
            fut = self._puback_future(mid)
            if not fut.done():
                fut.set_result((code, str(reason_code)))
            forward(c, userdata, mid, reason_code, props)

        return on_publish

    def ack(self, msg: Incoming) -> None:
        """Send the PUBACK for a QoS 1 message, after the caller journalled it."""
        client = self._client
        if client is None or msg.qos == 0:
            return
        # aiomqtt has no manual-ack API; paho's is the documented way (manual_ack_set).
        paho_client: paho.Client = client._client
        paho_client.ack(msg.mid, msg.qos)

    # -- one session ------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext | None:
        trusted = self._clock_trusted()
        # Said once when it starts and once when it ends, not at every retry.
        if self._s.tls and trusted == self._untrusted_logged:
            if trusted:
                log.info("wall clock trusted again: broker certificate dates are checked")
            else:
                log.warning("wall clock not trusted: broker certificate dates are not checked")
            self._untrusted_logged = not trusted
        return tls_context(self._s, check_time=trusted)

    def _make_client(self) -> aiomqtt.Client:
        s = self._s
        v5 = self._protocol == aiomqtt.ProtocolVersion.V5
        props: Properties | None = None
        will_props: Properties | None = None
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            protocol=self._protocol,
            will=aiomqtt.Will(
                self._announcement.topic,
                self._announcement.offline,
                qos=1,
                retain=True,
                properties=will_props,
            ),
            # clean start OFF on every connect (not just after the first): the queued
            # QoS 1 commands of a persistent session are the whole point.
            clean_start=False,
            clean_session=None if v5 else False,
            keepalive=s.keepalive_s,
            timeout=s.connect_timeout_s,
            properties=props,
            tls_context=self._tls_context(),
            max_queued_incoming_messages=1000,
            # Small packets (commands, acks) must not wait for Nagle + delayed ACK.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        # Manual PUBACK: must be switched on before connecting.
        inner: paho.Client = client._client
        inner.manual_ack_set(True)
        inner.on_publish = self._on_publish(client._on_publish)
        return client

    async def _session(self) -> None:
        client = self._make_client()
        try:
            await client.__aenter__()
        except aiomqtt.MqttCodeError as exc:
            if self._protocol == aiomqtt.ProtocolVersion.V5 and _unsupported_protocol(exc):
                log.warning("broker refused MQTT 5; falling back to MQTT 3.1.1")
                self._protocol = aiomqtt.ProtocolVersion.V311
            raise _ConnectFailed(str(exc)) from exc
        except (aiomqtt.MqttError, OSError, ssl.SSLError) as exc:
            raise _ConnectFailed(str(exc)) from exc
        self._client = client
        try:
            for topic in self._subscriptions:
                await client.subscribe(topic, qos=1, timeout=self._s.connect_timeout_s)
            await client.publish(
                self._announcement.topic,
                self._announcement.online(),
                qos=1,
                retain=True,
                timeout=self._s.connect_timeout_s,
            )
            self.connections += 1
            self.connected.set()
            log.info("connected to %s:%d as %s", self._s.host, self._s.port, self._s.client_id)
            if self._on_connect is not None:
                await self._on_connect()
            async for message in client.messages:
                await self._on_message(_incoming(message))
        except aiomqtt.MqttError as exc:
            log.warning("link lost: %s", exc)
        finally:
            self.connected.clear()
            self._client = None
            for fut in self._pubacks.values():
                if not fut.done():
                    fut.set_exception(NotConnected("session ended before the PUBACK"))
            self._pubacks.clear()
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def close(self, *, final_state: bytes | None = None) -> None:
        """Clean shutdown: publish the offline state ourselves (a clean DISCONNECT
        suppresses the Last Will) and disconnect."""
        client = self._client
        if client is None:
            return
        if final_state is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await client.publish(
                    self._announcement.topic, final_state, qos=1, retain=True, timeout=2
                )
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)


def _incoming(message: Any) -> Incoming:
    payload = message.payload
    if isinstance(payload, str):
        payload = payload.encode()
    elif payload is None:
        payload = b""
    elif not isinstance(payload, bytes | bytearray):
        payload = str(payload).encode()
    return Incoming(
        topic=str(message.topic.value),
        payload=bytes(payload),
        qos=int(message.qos),
        retain=bool(message.retain),
        mid=int(message.mid),
    )


def _unsupported_protocol(exc: aiomqtt.MqttCodeError) -> bool:
    rc = exc.rc
    value = getattr(rc, "value", rc)
    # 0x84 (v5) / 1 (v3 "unacceptable protocol version")
    return value in (0x84, 1)
