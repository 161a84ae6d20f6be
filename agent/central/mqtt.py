"""The console's MQTT connection: aiomqtt 2.x, MQTT 5, explicit keepalive, TLS."""

from __future__ import annotations

import ssl

import aiomqtt

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
