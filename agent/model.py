"""Typed values of the protocol (PROTOCOL §4-§5): what a verified command carries.

These are plain frozen dataclasses shared by the parser (agent/commands.py builds
them), the cache, the scheduler and the playback engine. No behaviour lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# PROTOCOL §4, the command catalogue: the one list both the parser and the config
# validator (trust globs) check against.
COMMAND_NAMES: tuple[str, ...] = (
    "schedule.set",
    "alert.start",
    "alert.stop",
    "alert.cap",
    "live.start",
    "live.stop",
    "volume.set",
    "media.prefetch",
    "status.request",
    "test.run",
    "agent.restart",
    "agent.update",
)

Kind = Literal["audio", "slides"]
ResumeMode = Literal["join", "restart", "drop"]

NORMAL_MAX = 49  # 0-49 normal (thông thường)
PRIORITY_MAX = 89  # 50-89 priority (ưu tiên); 90-100 emergency (khẩn cấp)


def is_emergency(priority: int) -> bool:
    return priority > PRIORITY_MAX


@dataclass(frozen=True)
class MediaRef:
    """A piece of content, authenticated by the signed command that names it (§5.1)."""

    url: str
    sha256: str  # 64 lowercase hex digits; the cache key
    size: int
    type: str  # MIME type


@dataclass(frozen=True)
class Slide:
    duration_s: float
    media: MediaRef | None = None
    text: str | None = None
    style: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleItem:
    id: str
    kind: Kind
    start: datetime  # aware; first occurrence
    media: tuple[MediaRef, ...] = ()
    slides: tuple[Slide, ...] = ()
    rrule: str | None = None  # RFC 5545 rule without DTSTART, in the device's zone
    until: datetime | None = None
    window_s: int = 300
    priority: int = 20
    volume: int = 100
    resume: ResumeMode = "join"


@dataclass(frozen=True)
class ScheduleSet:
    version: int
    items: tuple[ScheduleItem, ...]


@dataclass(frozen=True)
class AlertStart:
    alert_id: str
    media: tuple[MediaRef, ...] = ()
    text: str | None = None
    lang: str = "vi"
    priority: int = 100
    repeat: int = 3
    gap_s: float = 5.0
    chime: bool = True
    volume: int = 100
    until: datetime | None = None


@dataclass(frozen=True)
class AlertStop:
    alert_id: str


@dataclass(frozen=True)
class AlertCap:
    xml: str


@dataclass(frozen=True)
class LiveStart:
    session_id: str
    url: str
    priority: int = 60
    until: datetime | None = None


@dataclass(frozen=True)
class LiveStop:
    session_id: str


@dataclass(frozen=True)
class VolumeSet:
    level: int


@dataclass(frozen=True)
class MediaPrefetch:
    media: tuple[MediaRef, ...]


@dataclass(frozen=True)
class StatusRequest:
    pass


@dataclass(frozen=True)
class TestRun:
    what: Literal["speaker", "display"]


@dataclass(frozen=True)
class AgentRestart:
    pass


@dataclass(frozen=True)
class AgentUpdate:
    version: str  # PEP 440, already validated
    bundle: MediaRef
    allow_downgrade: bool = False


Args = (
    ScheduleSet
    | AlertStart
    | AlertStop
    | AlertCap
    | LiveStart
    | LiveStop
    | VolumeSet
    | MediaPrefetch
    | StatusRequest
    | TestRun
    | AgentRestart
    | AgentUpdate
)
