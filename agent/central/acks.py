"""Collecting the acks of one sent command (PROTOCOL §6.3) and the exit code. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.central.sign import is_long_running

EXIT_OK = 0
EXIT_REJECTED = 3
EXIT_NO_ACK = 4

FIRST = frozenset({"accepted", "rejected", "duplicate", "stale"})
FINAL = frozenset({"done", "failed"})
BAD = frozenset({"rejected", "failed"})


@dataclass
class _DeviceAcks:
    first: int = 0  # accepted|rejected|duplicate|stale seen
    started: int = 0  # accepted long-running commands awaiting done|failed
    finished: int = 0
    statuses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ack:
    device: str
    status: str
    data: dict[str, Any]

    def line(self) -> str:
        code = self.data.get("code")
        detail = self.data.get("detail")
        warnings = self.data.get("warnings") or []
        text = f"ack {self.device} {self.status.upper()}"
        if code:
            text += f" {code}"
        text += f" cmd={self.data.get('cmd')} jti={self.data.get('jti')}"
        if detail:
            text += f" ({detail})"
        for warning in warnings:
            text += f"\n    warning: {warning}"
        return text


class AckTracker:
    """Acks for one jti from the devices expected to answer.

    `expected` None means unknown (a group with no devices file): wait until the
    deadline. `tokens` is how many tokens with this jti each device gets (2 for a
    replay demonstration).
    """

    def __init__(self, jti: str, cmd: str, expected: frozenset[str] | None,
                 tokens: int = 1) -> None:
        self.jti = jti
        self.long_running = is_long_running(cmd)
        self.expected = expected
        self.tokens = tokens
        self.devices: dict[str, _DeviceAcks] = {}

    def add(self, device: str, payload: bytes) -> Ack | None:
        """The ack if `payload` is a well-formed ack for our jti, else None."""
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or data.get("jti") != self.jti:
            return None
        status = data.get("status")
        if status not in FIRST | FINAL:
            return None
        acks = self.devices.setdefault(device, _DeviceAcks())
        acks.statuses.append(status)
        if status in FIRST:
            acks.first += 1
            if status == "accepted" and self.long_running:
                acks.started += 1
        else:
            acks.finished += 1
        return Ack(device, status, data)

    def complete(self) -> bool:
        if self.expected is None:
            return False
        for device in self.expected:
            acks = self.devices.get(device)
            if acks is None or acks.first < self.tokens or acks.finished < acks.started:
                return False
        return True

    def missing(self) -> list[str]:
        return sorted((self.expected or frozenset()) - self.devices.keys())

    def running(self) -> list[str]:
        return sorted(d for d, a in self.devices.items() if a.finished < a.started)

    def exit_code(self) -> int:
        statuses = [s for a in self.devices.values() for s in a.statuses]
        if any(s in BAD for s in statuses):
            return EXIT_REJECTED
        if not statuses or self.missing():
            return EXIT_NO_ACK
        return EXIT_OK
