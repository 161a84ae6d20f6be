"""The doctor's vocabulary: a check's result, its messages, and the lenient config view.

Results carry English text (JSON output is never translated); `Msg.local()` translates
through gettext for the text renderer. Templates are marked with `M(...)` (agent/i18n.py),
which scripts/i18n.sh extracts like `_()`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import clock as clock_mod
from agent.i18n import M, Msg

__all__ = ["CHECK_IDS", "Check", "Environment", "LooseConfig", "M", "Msg"]

CHECK_IDS = (
    "config",
    "device_key",
    "broker_reach",
    "broker_tls",
    "broker_auth",
    "trust_keys",
    "clock",
    "disk",
    "storage",
    "audio",
    "display",
    "modem",
    "amplifier",
    "screen_relay",
)


@dataclass(frozen=True)
class Check:
    id: str
    ok: bool
    detail: Msg
    fix: Msg | None = None  # on a passed check: a warning worth acting on

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ok": self.ok,
            "detail": self.detail.en(),
            "fix": self.fix.en() if self.fix else None,
        }


@dataclass
class Environment:
    """What the checks read besides the config; tests point these at fakes or tmp trees."""

    sys_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")
    kernel_synced: Callable[[], bool | None] = clock_mod.kernel_ntp_synced
    rtc_set_clock: Callable[[], bool] = clock_mod.rtc_set_clock
    timeout_s: float = 3.0
    audio_devices: Callable[[], tuple[list[dict[str, Any]], int | None]] | None = None


class LooseConfig:
    """Lenient reads of the raw TOML, for checking what can be checked in a broken file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = Path(os.path.abspath(path.parent))
        self.parsed = True
        try:
            doc = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
        except (OSError, ValueError):
            doc, self.parsed = {}, False
        self.doc: dict[str, Any] = doc

    def get(self, section: str, key: str, default: Any = None, kind: type = str) -> Any:
        """`key` of `section` ("display.relay" for a nested table) if it is a `kind`."""
        table: Any = self.doc
        for name in section.split("."):
            table = table.get(name) if isinstance(table, dict) else None
        value = table.get(key, default) if isinstance(table, dict) else default
        if kind is int and isinstance(value, bool):
            return default
        return value if isinstance(value, kind) else default

    def file(self, section: str, key: str) -> Path | None:
        value = self.get(section, key, "")
        if not value or not value.strip() or "\x00" in value:
            return None
        p = Path(value)
        return p if p.is_absolute() else self.base / p

    def trust(self) -> list[dict[str, Any]]:
        t = self.doc.get("trust")
        return [e for e in t if isinstance(e, dict)] if isinstance(t, list) else []
