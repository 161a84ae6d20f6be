"""The production configurations in config/mosquitto/ really run and really enforce
the rules: started here with only their paths and port moved to a temp folder."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from support.broker import DEFAULT_DEVICES, Broker, before_marker, mqtt_client, next_message

from agent.central.acl import render_acl

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

CONF_DIR = Path(__file__).resolve().parents[2] / "config" / "mosquitto"


def _localise(text: str, workdir: Path, port: int) -> str:
    """Move the production paths and port into the test's folder, failing loudly if a
    path we expect is gone (the conf changed and this test must follow)."""
    moves = {
        "/etc/mosquitto/tcs/": f"{workdir}/",
        "/var/lib/mosquitto/": f"{workdir}/data/",
        "log_dest file /var/log/mosquitto/mosquitto.log": "log_dest stderr",
        "\nlistener 8883\n": f"\nlistener {port} 127.0.0.1\n",
    }
    for old, new in moves.items():
        assert old in text, f"shipped conf no longer contains {old!r}"
        text = text.replace(old, new)
    # Tests only: as root, mosquitto would drop to user `mosquitto`, which cannot read tmp.
    return ("user root\n" if os.geteuid() == 0 else "") + text


def _write_crl(workdir: Path, revoked_users: Sequence[str]) -> None:
    """crl.pem signed by the broker's CA, revoking the client certificates of these users."""
    ca = x509.load_pem_x509_certificate((workdir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((workdir / "ca.key").read_bytes(), password=None)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=7))
    )
    for user in revoked_users:
        cert = x509.load_pem_x509_certificate((workdir / "clients" / f"{user}.pem").read_bytes())
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - dt.timedelta(minutes=1))
            .build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    (workdir / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))


@contextmanager
def shipped_broker(tmp_path: Path, conf_name: str, *, revoked: Sequence[str] = ()) -> Iterator[Any]:
    workdir = tmp_path / "shipped"
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    # Broker() only prepares CA, certs, passwords and ACL; we run mosquitto ourselves.
    files = Broker(workdir, DEFAULT_DEVICES, port=port, mtls_port=port)
    if "crlfile" in (CONF_DIR / conf_name).read_text():
        _write_crl(workdir, revoked)
    conf = workdir / conf_name
    conf.write_text(_localise((CONF_DIR / conf_name).read_text(), workdir, port))
    with (workdir / "shipped.log").open("wb") as log:
        proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 5
        while True:
            assert proc.poll() is None, (workdir / "shipped.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "shipped conf: broker did not listen"
                time.sleep(0.02)
        yield files
    finally:
        proc.terminate()
        proc.wait(5)


def test_acl_example_is_what_render_acl_produces() -> None:
    assert (CONF_DIR / "acl.example").read_text() == render_acl(DEFAULT_DEVICES)


async def test_password_conf_enforces_passwords_acl_and_client_id(tmp_path: Path) -> None:
    with shipped_broker(tmp_path, "mosquitto-password.conf") as b:
        with anyio.fail_after(5), pytest.raises(aiomqtt.MqttCodeError):
            async with mqtt_client(b, "dev-0001", password="wrong"):
                pass
        async with (
            mqtt_client(b, "central") as console,
            mqtt_client(b, "dev-0002") as dev2,
            mqtt_client(b, "dev-0001", identifier="dev-0002") as imposter,
        ):
            await dev2.subscribe("tcs/v1/dev/dev-0002/cmd", qos=1)
            await imposter.subscribe("tcs/v1/dev/+/cmd", qos=1)
            await console.publish("tcs/v1/dev/dev-0002/cmd", b"for-2", qos=1)
            assert (await next_message(dev2)).payload == b"for-2"
            assert await before_marker(imposter, console, "tcs/v1/dev/dev-0001/cmd") == []


async def test_mtls_conf_admits_device_certificates_to_their_own_topics(
    tmp_path: Path,
) -> None:
    # dev-0002's certificate is revoked in the CRL the conf requires (issue 7 item 10).
    with shipped_broker(tmp_path, "mosquitto-mtls.conf", revoked=["dev-0002"]) as b:
        with anyio.fail_after(10), pytest.raises(aiomqtt.MqttError):
            async with mqtt_client(b, "dev-0002", mtls=True, timeout=2):
                pass
        async with (
            mqtt_client(b, "central", mtls=True) as console,
            mqtt_client(b, "dev-0001", mtls=True) as dev1,
        ):
            await dev1.subscribe("tcs/v1/dev/+/cmd", qos=1)
            await console.publish("tcs/v1/dev/dev-0002/cmd", b"for-2", qos=1)
            await console.publish("tcs/v1/dev/dev-0001/cmd", b"for-1", qos=1)
            got = [await next_message(dev1)]
            got += await before_marker(dev1, console, "tcs/v1/dev/dev-0001/cmd")
            assert [m.payload for m in got] == [b"for-1"]
        # Without a client certificate the TLS handshake is refused.
        with anyio.fail_after(5), pytest.raises(aiomqtt.MqttError):
            async with mqtt_client(b, "dev-0001", timeout=2):
                pass
