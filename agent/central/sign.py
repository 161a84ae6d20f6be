"""Command claims, signing, and deliberate tampering (PROTOCOL §3). Pure.

The tampered variants are what an attacker or a broken source system would send;
the console produces them on purpose so that a device's refusals can be shown and
accepted in the field (`tcs-central send --tamper ...`). Each variant is built so
that exactly one check of §3 fails, the one it is named after.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws, wire

Tamper = Literal["signature", "expired", "alg-none", "hs256", "wrong-aud", "replay"]
TAMPERS: tuple[Tamper, ...] = ("signature", "expired", "alg-none", "hs256", "wrong-aud", "replay")

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")
MAX_JTI = 64
# Far beyond the device's 30 s leeway, so `expired` never depends on clock skew.
EXPIRED_AGO_S = 3600

# The command table is shared with the agent (agent/wire.py, PROTOCOL §4, §6.3).
KNOWN_COMMANDS: tuple[str, ...] = tuple(wire.COMMANDS)
LONG_RUNNING: frozenset[str] = wire.LONG_RUNNING
is_long_running = wire.is_long_running


@dataclass(frozen=True)
class SignedCommand:
    """One token ready to publish, with what it carries (for printing and tests)."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    note: str  # what was done to it, "" for an honest token


def new_jti() -> str:
    return uuid.uuid4().hex


def build_claims(
    *, iss: str, aud: str, cmd: str, args: dict[str, Any], now: int, ttl_s: int,
    jti: str,
) -> dict[str, Any]:
    """The §3 claims. Raises ValueError naming the bad input."""
    if not ID_RE.match(aud):
        raise ValueError(f"target {aud!r} is not a device or group id ({ID_RE.pattern})")
    if not jti or len(jti) > MAX_JTI:
        raise ValueError(f"jti must be 1 to {MAX_JTI} characters, got {len(jti)}")
    if ttl_s <= 0:
        raise ValueError(f"ttl must be positive, not {ttl_s}")
    if not iss:
        raise ValueError("issuer is empty")
    if not cmd:
        raise ValueError("command name is empty")
    return {"iss": iss, "aud": aud, "jti": jti, "iat": now, "exp": now + ttl_s,
            "cmd": cmd, "args": args}


def header_for(kid: str, alg: str = "EdDSA") -> dict[str, Any]:
    return {"alg": alg, "typ": "JWT", "kid": kid}


def sign(key: Ed25519PrivateKey, kid: str, claims: dict[str, Any], note: str = "") -> SignedCommand:
    header = header_for(kid)
    return SignedCommand(jws.sign_compact(key, header, claims), header, claims, note)


def _unsigned_parts(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return (f"{jws.b64url_encode(jws.canonical_json(header))}."
            f"{jws.b64url_encode(jws.canonical_json(claims))}")


def make_tokens(
    key: Ed25519PrivateKey, kid: str, claims: dict[str, Any], tamper: Tamper | None,
    *, other_aud: str | None = None,
) -> list[SignedCommand]:
    """The token(s) to publish, in order, for honest claims and an optional tamper.

    `replay` yields two tokens sharing one jti: an honest one, then a different
    token reusing its jti (so a device accepts the first and must reject the second
    as `replayed`, not `duplicate`). `wrong-aud` needs `other_aud`, the audience of
    another device.
    """
    if tamper is None:
        return [sign(key, kid, claims)]
    if tamper == "signature":
        honest = sign(key, kid, claims)
        head, _, sig = honest.token.rpartition(".")
        raw = bytearray(jws.b64url_decode(sig))
        raw[0] ^= 0x01  # one flipped bit: otherwise perfect, and still refused
        return [SignedCommand(f"{head}.{jws.b64url_encode(bytes(raw))}", honest.header,
                              claims, "signature: one bit flipped")]
    if tamper == "expired":
        exp = int(claims["iat"]) - EXPIRED_AGO_S
        ttl = int(claims["exp"]) - int(claims["iat"])
        old = {**claims, "iat": exp - ttl, "exp": exp}
        return [sign(key, kid, old, f"expired: exp {EXPIRED_AGO_S} s ago")]
    if tamper == "alg-none":
        header = header_for(kid, "none")
        # RFC 7519 §6: an unsecured JWS has an empty signature part.
        return [SignedCommand(_unsigned_parts(header, claims) + ".", header, claims,
                              "alg-none: unsigned")]
    if tamper == "hs256":
        header = header_for(kid, "HS256")
        signing_input = _unsigned_parts(header, claims)
        # The classic key-confusion attack: HMAC keyed with the (public) verifying key.
        mac = hmac.new(jws.public_raw(key), signing_input.encode("ascii"), hashlib.sha256)
        return [SignedCommand(f"{signing_input}.{jws.b64url_encode(mac.digest())}", header,
                              claims, "hs256: HMAC keyed with the public key")]
    if tamper == "wrong-aud":
        if not other_aud or other_aud == claims["aud"]:
            raise ValueError("wrong-aud needs an audience other than the target")
        return [sign(key, kid, {**claims, "aud": other_aud},
                     f"wrong-aud: aud {other_aud} published to {claims['aud']}")]
    if tamper == "replay":
        first = sign(key, kid, claims, "replay: original")
        # Same jti, different bytes: one second more of validity.
        second = sign(key, kid, {**claims, "exp": int(claims["exp"]) + 1},
                      "replay: same jti, different token")
        return [first, second]
    raise ValueError(f"unknown tamper {tamper!r}; choose from {', '.join(TAMPERS)}")


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Header, claims and signature of a compact JWS, without checking anything else.

    For display and tests; raises ValueError on anything that is not three
    base64url parts with JSON objects in the first two.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"compact JWS has 3 parts, this has {len(parts)}")
    header = json.loads(jws.b64url_decode(parts[0]))
    claims = json.loads(jws.b64url_decode(parts[1]))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header and claims must be JSON objects")
    return header, claims, jws.b64url_decode(parts[2])


def verify_eddsa(token: str, public: bytes) -> dict[str, Any] | None:
    """The claims if `token` is EdDSA and verifies with `public`, else None."""
    try:
        header, claims, sig = decode_unverified(token)
    except ValueError:
        return None
    if header.get("alg") != "EdDSA":
        return None
    signing_input = token.rpartition(".")[0].encode("ascii")
    return claims if jws.verify_ed25519(public, signing_input, sig) else None
