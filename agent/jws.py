"""Compact JWS (RFC 7515) with EdDSA over Ed25519 (RFC 8037), and device/trust key files.

Why not a JWT library: PROTOCOL §3 fixes the order of the checks and a reason code
for each (alg before kid before signature before audience ...). General JWT
libraries fold these into one opaque exception. The framing is twenty lines; the
cryptography is `cryptography`'s Ed25519, which is well kept and constant-time.
Everything here is pure (no I/O) except the two PEM helpers at the bottom.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from agent.fsutil import atomic_write

_B64URL_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    raw = text.encode("ascii", "strict") if isinstance(text, str) else bytes(text)
    if not set(raw) <= _B64URL_ALPHABET or len(raw) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def sign_compact(key: Ed25519PrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign `claims` as a compact JWS with the given header (alg must be EdDSA)."""
    h = b64url_encode(canonical_json(header))
    p = b64url_encode(canonical_json(claims))
    sig = key.sign(f"{h}.{p}".encode("ascii"))
    return f"{h}.{p}.{b64url_encode(sig)}"


def verify_ed25519(public_raw: bytes, signing_input: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, signing_input)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: bytes) -> str:
    """OpenSSH-style fingerprint of a raw public key: SHA256:<base64url of its hash>."""
    return "SHA256:" + b64url_encode(hashlib.sha256(public).digest())


def decode_public_key(text: str) -> bytes:
    """A trust key as configured: base64url of the raw 32-byte Ed25519 key."""
    raw = b64url_decode(text.strip())
    if len(raw) != 32:
        raise ValueError(f"decodes to {len(raw)} bytes, an Ed25519 public key has 32")
    Ed25519PublicKey.from_public_bytes(raw)
    return raw


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from a PEM (PKCS#8) file."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def create_private_key(path: Path) -> Ed25519PrivateKey:
    """Create a new Ed25519 key as PEM (PKCS#8), mode 0600, written atomically."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, pem, mode=0o600)
    return key
