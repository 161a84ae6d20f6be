"""The console's MQTT connection: aiomqtt 2.x, MQTT 5, explicit keepalive, TLS."""

from __future__ import annotations

import ssl

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.central.settings import BrokerSettings

TOPIC_PREFIX = "tcs/v1"


def device_topic(device: str, leaf: str) -> str:
    return f"{TOPIC_PREFIX}/dev/{device}/{leaf}"


def group_topic(group: str, leaf: str) -> str:
    return f"{TOPIC_PREFIX}/grp/{group}/{leaf}"


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


def make_client(broker: BrokerSettings) -> aiomqtt.Client:
    """A client for one console session (clean start: the console keeps no session)."""
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=broker.client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=True,
        # Set explicitly: aiomqtt 3 defaults it to 0 (off), see TESTING-NOTES.
        keepalive=broker.keepalive_s,
        # A TLS rejection otherwise shows only as a long hang.
        timeout=broker.connect_timeout_s,
        tls_context=tls_context(broker),
    )


def make_session_client(broker: BrokerSettings, session_expiry_s: int) -> aiomqtt.Client:
    """A client with a persistent session and manual PUBACK, for the collector.

    Clean start off and a session expiry: QoS 1 reports published while the
    collector was down wait in the broker. Manual PUBACK: a report is acknowledged
    only after it is committed (`ack`), so a killed collector gets it again.
    """
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=broker.client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=props,
        keepalive=broker.keepalive_s,
        timeout=broker.connect_timeout_s,
        tls_context=tls_context(broker),
        max_queued_incoming_messages=10000,
    )
    # Same documented paho switch as agent/link.py; must be set before connecting.
    inner: paho.Client = client._client
    inner.manual_ack_set(True)
    return client


def ack(client: aiomqtt.Client, mid: int, qos: int) -> None:
    """Send the PUBACK of a QoS 1 message (aiomqtt has no manual-ack API of its own)."""
    if qos > 0:
        inner: paho.Client = client._client
        inner.ack(mid, qos)
