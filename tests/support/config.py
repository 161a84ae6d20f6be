"""Real files for configuration tests: a device key, TLS material, a valid config text.

    folder = tmp_path
    text = good_config_text(folder)              # valid; device key created in folder
    cfg = parse_config(text, folder / "agent.toml")

Everything is made with `cryptography` (no openssl subprocess), in a few milliseconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from agent import jws

__all__ = ["TlsFiles", "good_config_text", "make_tls_files", "public_b64", "write_pem_key"]


def public_b64(key: Ed25519PrivateKey | None = None) -> str:
    """A trust key as configured: base64url of a (new) Ed25519 public key."""
    return jws.b64url_encode(jws.public_raw(key or Ed25519PrivateKey.generate()))


def write_pem_key(path: Path, key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _cert(
    subject: str, public: ec.EllipticCurvePublicKey, issuer: str, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(signer, hashes.SHA256())
    )


def make_tls_files(folder: Path, device_id: str = "dev-0001") -> TlsFiles:
    """A CA certificate and a client certificate + key signed by it, as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    dev_key = ec.generate_private_key(ec.SECP256R1())
    ca = folder / "ca.pem"
    ca.write_bytes(
        _cert("test-ca", ca_key.public_key(), "test-ca", ca_key).public_bytes(
            serialization.Encoding.PEM
        )
    )
    cert = folder / "device.crt"
    cert.write_bytes(
        _cert(device_id, dev_key.public_key(), "test-ca", ca_key).public_bytes(
            serialization.Encoding.PEM
        )
    )
    return TlsFiles(ca, cert, write_pem_key(folder / "device.pem", dev_key))


def good_config_text(folder: Path, *, device_id: str = "dev-0001") -> str:
    """A valid configuration using a loopback broker; creates `folder/device.key`.

    Paths are relative, so they resolve against wherever the text is said to come from.
    Each key sits on its own line so tests can break one with `str.replace`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "device.key").exists():
        jws.create_private_key(folder / "device.key")
    return f"""\
[device]
id = "{device_id}"
groups = ["vn-48", "vn-48-490"]
timezone = "Asia/Ho_Chi_Minh"
key_file = "device.key"

[broker]
url = "mqtt://127.0.0.1:1883"
keepalive_s = 60

[[trust]]
kid = "vn-48-emergency"
public_key = "{public_b64()}"
commands = ["alert.*", "schedule.set"]
max_priority = 100

[[trust]]
kid = "commune-operator"
public_key = "{public_b64()}"
commands = ["schedule.set"]
max_priority = 49

[storage]
dir = "state"

[audio]
quiet_hours = "22:00-05:00"

[report]
heartbeat_s = 60
"""
