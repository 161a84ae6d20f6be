"""A revoked device certificate is refused by the real Mosquitto (mTLS listener with
the CA's CRL, as config/mosquitto/mosquitto-mtls.conf ships it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import pytest
from support.broker import mqtt_client

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

CONF = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "mosquitto-mtls.conf"


def test_shipped_mtls_conf_checks_the_crl() -> None:
    lines = [ln.strip() for ln in CONF.read_text().splitlines()]
    assert "crlfile /etc/mosquitto/tcs/crl.pem" in lines  # enabled, not commented out


async def test_revoked_device_certificate_is_refused(broker: Any) -> None:
    async with mqtt_client(broker, "dev-0002", mtls=True) as dev2:
        await dev2.publish("tcs/v1/dev/dev-0002/state", b"{}", qos=1)
    broker.revoke("dev-0002")
    broker.restart()
    with anyio.fail_after(15), pytest.raises(aiomqtt.MqttError):
        async with mqtt_client(broker, "dev-0002", mtls=True, timeout=3):
            pass
    # Others are not affected.
    async with mqtt_client(broker, "dev-0001", mtls=True) as dev1:
        await dev1.publish("tcs/v1/dev/dev-0001/state", b"{}", qos=1)
