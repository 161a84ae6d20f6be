"""Helpers to build real signed commands (PROTOCOL §3) for tests of any area.

    signer = Signer.new("vn-48-emergency")
    ctx = make_ctx([signer.trust_key()])
    payload = signer.token("alert.start", {"alert_id": "a1", "text": "..."}, aud="dev-0001")
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.jws import b64url_encode, public_raw, sign_compact
from agent.protocol import VerifyContext

DEVICE = "dev-0001"
GROUPS = frozenset({"vn-48", "vn-48-490", "vn-48-490-20194"})
NOW = 1_795_000_000  # 2026-11-18, a fixed "now" for pure tests
SHA = "ab" * 32

_jti_counter = itertools.count(1)


@dataclass(frozen=True)
class TrustKey:
    """Shaped like agent.config.TrustKey (kid, raw public key, command globs, max priority)."""

    kid: str
    public_key: bytes
    commands: tuple[str, ...] = ("*",)
    max_priority: int = 100


@dataclass
class Signer:
    kid: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @classmethod
    def new(cls, kid: str) -> Signer:
        return cls(kid=kid)

    def trust_key(self, commands: tuple[str, ...] = ("*",), max_priority: int = 100) -> TrustKey:
        return TrustKey(self.kid, public_raw(self.key), commands, max_priority)

    def claims(self, cmd: str, args: dict[str, Any] | None = None, *, aud: str = DEVICE,
               jti: str | None = None, iat: int = NOW, exp: int | None = None,
               iss: str = "vn-48") -> dict[str, Any]:
        return {
            "iss": iss,
            "aud": aud,
            "jti": jti if jti is not None else f"j-{next(_jti_counter)}",
            "iat": iat,
            "exp": exp if exp is not None else iat + 3600,
            "cmd": cmd,
            "args": args if args is not None else {},
        }

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> bytes:
        hdr = header if header is not None else {"alg": "EdDSA", "typ": "JWT", "kid": self.kid}
        return sign_compact(self.key, hdr, claims).encode("ascii")

    def token(self, cmd: str, args: dict[str, Any] | None = None, **kw: Any) -> bytes:
        return self.sign(self.claims(cmd, args, **kw))


def hand_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> bytes:
    """A JWS built by hand (alg none, HS256, ...): no signing key involved."""
    h = b64url_encode(json.dumps(header).encode())
    p = b64url_encode(json.dumps(claims).encode())
    return f"{h}.{p}.{b64url_encode(signature)}".encode("ascii")


def make_ctx(keys: list[TrustKey], device_id: str = DEVICE,
             groups: frozenset[str] = GROUPS) -> VerifyContext:
    return VerifyContext(device_id=device_id, groups=groups, trust={k.kid: k for k in keys})


def media(url: str = "https://cdn.example.vn/a.mp3", sha: str = SHA, size: int = 1000,
          mime: str = "audio/mpeg") -> dict[str, Any]:
    return {"url": url, "sha256": sha, "size": size, "type": mime}


def audio_item(item_id: str = "morning-news", **over: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "kind": "audio",
        "media": [media()],
        "start": "2026-11-24T05:30:00+07:00",
        "rrule": "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR,SA,SU",
        "until": "2026-12-31T23:59:59+07:00",
        "window_s": 300,
        "priority": 20,
        "volume": 80,
        "resume": "join",
    }
    item.update(over)
    return item


# A valid args object for every known command (the fuzzers mutate these).
VALID_ARGS: dict[str, dict[str, Any]] = {
    "schedule.set": {"version": 3, "items": [audio_item()]},
    "alert.start": {"alert_id": "flood-1", "text": "Lũ khẩn cấp", "media": [media()]},
    "alert.stop": {"alert_id": "flood-1"},
    "alert.cap": {"xml": (
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x1</identifier>'
        "<sender>vn-48</sender><sent>2026-11-18T10:00:00+07:00</sent><status>Actual</status>"
        "<msgType>Alert</msgType><scope>Public</scope><info><language>vi-VN</language>"
        "<headline>Bão số 9</headline></info></alert>")},
    "live.start": {"session_id": "s1", "url": "rtsp://stream.example.vn/live"},
    "live.stop": {"session_id": "s1"},
    "volume.set": {"level": 70},
    "media.prefetch": {"media": [media()]},
    "status.request": {},
    "test.run": {"what": "speaker"},
    "agent.restart": {},
    "agent.update": {"version": "1.4.0", "bundle": media()},
}


def no_jti(_jti: str) -> str | None:
    return None
