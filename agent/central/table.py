"""The watch console's model: device rows from state/heartbeat, log lines for the rest.

Pure: `Board.handle(topic, payload, now)` updates the rows and returns what to log;
`Board.render(now)` draws the table. `now` is the console's clock (heartbeat age is
measured on receipt, so a device with a wrong clock still shows a true age).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.central.acl import DeviceEntry
from agent.central.proofs import check_proof

REPORTS = ("state", "hb", "ack", "proof", "event")


@dataclass
class DeviceRow:
    id: str
    enrolled: bool
    online: bool | None = None  # None: no retained state seen
    agent_version: str | None = None
    schedule_version: int | None = None
    hb_received: float | None = None
    playing: str | None = None
    alert_id: str | None = None
    volume: int | None = None
    outbox: int | None = None


@dataclass(frozen=True)
class LogLine:
    kind: str  # state | hb | ack | event | proof | warning
    device: str | None
    text: str
    loud: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "device": self.device, "loud": self.loud, "text": self.text,
                **self.data}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _playing(value: object) -> str | None:
    if not isinstance(value, dict):
        return None
    item = value.get("item_id") or "?"
    prio = value.get("priority")
    return f"{item}(p{prio})" if prio is not None else str(item)


COLUMNS = ("DEVICE", "STATUS", "HB AGE", "SCHED", "PLAYING", "ALERT", "VOL", "OUTBOX")


class Board:
    """Live view of the devices; enrolled ones are listed before any report arrives."""

    def __init__(self, devices: Sequence[DeviceEntry], keys: Mapping[str, bytes]) -> None:
        self.rows: dict[str, DeviceRow] = {d.id: DeviceRow(d.id, True) for d in devices}
        self.keys = keys

    def _row(self, device: str) -> DeviceRow:
        if device not in self.rows:
            self.rows[device] = DeviceRow(device, enrolled=False)
        return self.rows[device]

    def cells(self, row: DeviceRow, now: float) -> tuple[str, ...]:
        status = {True: "online", False: "OFFLINE", None: "?"}[row.online]
        if not row.enrolled:
            status += " (not enrolled)"
        age = None if row.hb_received is None else now - row.hb_received
        return (row.id, status, _age(age), _text(row.schedule_version), _text(row.playing),
                _text(row.alert_id), _text(row.volume), _text(row.outbox))

    def row_line(self, device: str, now: float) -> str:
        c = self.cells(self.rows[device], now)
        names = ("status", "hb", "sched", "playing", "alert", "vol", "outbox")
        return c[0] + " " + " ".join(f"{n}={v}" for n, v in zip(names, c[1:], strict=True))

    def render(self, now: float) -> str:
        table = [COLUMNS] + [self.cells(self.rows[d], now) for d in sorted(self.rows)]
        widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                         for r in table)

    def handle(self, topic: str, payload: bytes, now: float) -> list[LogLine]:
        """Apply one message; return the lines to log. Never raises on bad input."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[:3] != ["tcs", "v1", "dev"] or parts[4] not in REPORTS:
            return [LogLine("warning", None, f"message on unexpected topic {topic}")]
        device, kind = parts[3], parts[4]
        if kind == "proof":
            return [self._proof(device, payload)]
        if kind == "state" and not payload:
            # An empty retained message clears the state: the device was retired.
            self._row(device).online = None
            return [LogLine("state", device, f"{device} state cleared")]
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            return [LogLine("warning", device, f"{device}: {kind} is not a JSON object",
                            loud=True)]
        if kind == "state":
            return [self._state(device, data, now)]
        if kind == "hb":
            return [self._heartbeat(device, data, now)]
        if kind == "ack":
            return [self._ack(device, data)]
        return [self._event(device, data)]

    def _state(self, device: str, data: dict[str, Any], now: float) -> LogLine:
        row = self._row(device)
        online = data.get("online")
        row.online = online if isinstance(online, bool) else None
        if isinstance(data.get("agent_version"), str):
            row.agent_version = data["agent_version"]
        row.schedule_version = _int_or_none(data.get("schedule_version"))
        return LogLine("state", device, f"{self.row_line(device, now)} at={data.get('at')}",
                       loud=row.online is False, data={"state": data})

    def _heartbeat(self, device: str, data: dict[str, Any], now: float) -> LogLine:
        row = self._row(device)
        row.hb_received = now
        if row.online is None:
            row.online = True  # a heartbeat is only sent while connected
        row.schedule_version = _int_or_none(data.get("schedule_version"))
        row.playing = _playing(data.get("playing"))
        row.alert_id = data.get("alert_id") if isinstance(data.get("alert_id"), str) else None
        row.volume = _int_or_none(data.get("volume"))
        row.outbox = _int_or_none(data.get("outbox"))
        return LogLine("hb", device, self.row_line(device, now), data={"hb": data})

    def _ack(self, device: str, data: dict[str, Any]) -> LogLine:
        status = str(data.get("status"))
        text = f"ack {device} {status.upper()}"
        if data.get("code"):
            text += f" {data['code']}"
        text += f" cmd={data.get('cmd')} jti={data.get('jti')}"
        if data.get("detail"):
            text += f" ({data['detail']})"
        return LogLine("ack", device, text, loud=status in ("rejected", "failed"),
                       data={"ack": data})

    def _event(self, device: str, data: dict[str, Any]) -> LogLine:
        level = str(data.get("level"))
        text = f"event {device} {level.upper()} {data.get('code')}: {data.get('detail')}"
        return LogLine("event", device, text, loud=level == "error", data={"event": data})

    def _proof(self, device: str, payload: bytes) -> LogLine:
        try:
            token = payload.decode("ascii").strip()
        except UnicodeDecodeError:
            token = ""
        check = check_proof(token, device, self.keys)
        claims = check.claims or {}
        what = (claims.get("item_id") or claims.get("alert_id") or claims.get("session_id"))
        summary = (f"{claims.get('kind')} {what} outcome={claims.get('outcome')}"
                   + (f" reason={claims['reason']}" if claims.get("reason") else "")
                   + (f" played_ms={claims['played_ms']}" if "played_ms" in claims else ""))
        data = {"verdict": check.verdict, "reason": check.reason or None, "proof": claims}
        if check.verdict == "VERIFIED":
            return LogLine("proof", device, f"proof {device} VERIFIED {summary}", data=data)
        return LogLine("proof", device,
                       f"!!! proof {device} {check.verdict} ({check.reason}) {summary} !!!",
                       loud=True, data=data)
