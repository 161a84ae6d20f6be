"""The console's MQTT connection: aiomqtt 2.x, MQTT 5, explicit keepalive, TLS."""

from __future__ import annotations

import ssl

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import wire
from agent.central.settings import BrokerSettings

TOPIC_PREFIX = wire.ROOT
device_topic = wire.device_topic
group_topic = wire.group_topic


def tls_context(broker: BrokerSettings) -> ssl.SSLContext | None:
    """Server verification against `ca_file` (or the system store); mTLS when configured."""
    if not broker.tls:
        return None
    ctx = ssl.create_default_context(
        cafile=str(broker.ca_file) if broker.ca_file is not None else None
    )
    if broker.cert_file is not None and broker.key_file is not None:
        ctx.load_cert_chain(str(broker.cert_file), str(broker.key_file))
    return ctx


def make_client(broker: BrokerSettings, *, session_expiry_s: int | None = None
                ) -> aiomqtt.Client:
    """A client for one console session.

    Without `session_expiry_s`: clean start, the console keeps no session (send,
    watch). With it (the collector): clean start off and that session expiry, so QoS
    1 reports published while the collector was down wait in the broker; and manual
    PUBACK (`ack`), so a report is acknowledged only after it is committed and a
    killed collector gets it again.
    """
    props = None
    if session_expiry_s is not None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry_s
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=broker.client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=session_expiry_s is None,
        properties=props,
        # Set explicitly: aiomqtt 3 defaults it to 0 (off), see TESTING-NOTES.
        keepalive=broker.keepalive_s,
        # A TLS rejection otherwise shows only as a long hang.
        timeout=broker.connect_timeout_s,
        tls_context=tls_context(broker),
        # The collector's bound: beyond it (only QoS 0 heartbeats can get there, QoS 1
        # is held by the broker's in-flight window) messages are dropped, not hoarded.
        max_queued_incoming_messages=10000 if session_expiry_s is not None else None,
    )
    if session_expiry_s is not None:
        # Same documented paho switch as agent/link.py; must be set before connecting.
        inner: paho.Client = client._client
        inner.manual_ack_set(True)
    return client


def ack(client: aiomqtt.Client, mid: int, qos: int) -> None:
    """Send the PUBACK of a QoS 1 message (aiomqtt has no manual-ack API of its own)."""
    if qos > 0:
        inner: paho.Client = client._client
        inner.ack(mid, qos)
