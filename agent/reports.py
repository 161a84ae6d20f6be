"""What the device says to the province (PROTOCOL §2 topics, §6 payloads). Pure builders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws, wire

PREFIX = wire.ROOT

AckStatus = Literal["accepted", "rejected", "duplicate", "stale", "done", "failed"]
Level = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Topics:
    device_id: str

    @property
    def cmd(self) -> str:
        return f"{PREFIX}/dev/{self.device_id}/cmd"

    def group_cmd(self, group: str) -> str:
        return f"{PREFIX}/grp/{group}/cmd"

    @property
    def state(self) -> str:
        return f"{PREFIX}/dev/{self.device_id}/state"

    @property
    def hb(self) -> str:
        return f"{PREFIX}/dev/{self.device_id}/hb"

    @property
    def ack(self) -> str:
        return f"{PREFIX}/dev/{self.device_id}/ack"

    @property
    def proof(self) -> str:
        return f"{PREFIX}/dev/{self.device_id}/proof"

    @property
    def event(self) -> str:
        return f"{PREFIX}/dev/{self.device_id}/event"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def state_payload(
    *, online: bool, at: str, agent_version: str, schedule_version: int | None
) -> bytes:
    return dumps(
        {
            "online": online,
            "at": at,
            "agent_version": agent_version,
            "schedule_version": schedule_version,
        }
    )


def ack_payload(
    *,
    jti: str | None,
    cmd: str | None,
    status: AckStatus,
    at: str,
    code: str | None = None,
    detail: str | None = None,
    warnings: list[str] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "jti": jti,
        "cmd": cmd,
        "status": status,
        "code": code,
        "detail": detail,
        "at": at,
    }
    if warnings:
        body["warnings"] = warnings
    return dumps(body)


def event_payload(*, at: str, level: Level, code: str, detail: str) -> bytes:
    return dumps({"at": at, "level": level, "code": code, "detail": detail})


def proof_token(key: Ed25519PrivateKey, device_id: str, record: dict[str, Any]) -> bytes:
    """A proof of play as a JWS signed with the device's own key (kid = device id)."""
    header = {"alg": "EdDSA", "typ": "JWT", "kid": device_id}
    return jws.sign_compact(key, header, record).encode("ascii")
