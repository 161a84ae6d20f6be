"""Runs the health probes at their rate, off the event loop, and raises events on change.

Every probe reads small kernel files, which on a struggling SD card can block for
seconds: they run in a worker thread (`asyncio.to_thread`) and the heartbeat reads
the last snapshot, never the files. `changes()` is the pure rule that turns two
snapshots into operator events (PROTOCOL §6.5): card read-only, filesystem errors,
under-voltage, modem lost and back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.periodic import Periodic
from agent.probes.amplifier import amplifier_state
from agent.probes.audio import sound_cards
from agent.probes.cpu_temp import cpu_temp_c
from agent.probes.disk import disk_free_mb
from agent.probes.display import display_present
from agent.probes.load import load1
from agent.probes.memory import mem_used_pct
from agent.probes.modem import ModemReading, data_bytes
from agent.probes.sdcard import CardHealth, card_health
from agent.probes.throttle import Throttle, throttle
from agent.probes.uptime import system_uptime_s

log = logging.getLogger(__name__)

EventSink = Callable[[str, str, str], Awaitable[None]]
Event = tuple[str, str, str]  # level, code, detail


@dataclass(frozen=True)
class Roots:
    """Where the kernel trees are; tests point these at fake trees."""

    sys: Path = Path("/sys")
    proc: Path = Path("/proc")
    dev: Path = Path("/dev")


@dataclass(frozen=True)
class Snapshot:
    cpu_temp_c: float | None = None
    load1: float | None = None
    mem_used_pct: float | None = None
    disk_free_mb: int | None = None
    system_uptime_s: int | None = None
    throttle: Throttle | None = None
    card: CardHealth | None = None
    sound_cards: list[str] | None = None
    modem: ModemReading | None = None
    modem_data: dict[str, int] | None = None
    amplifier: dict[str, object] | None = None
    display_present: bool | None = None

    def details(self) -> dict[str, Any]:
        """The project's extra heartbeat object `health` (docs/PROTOCOL-NOTES.md)."""
        m = self.modem
        return {
            "system_uptime_s": self.system_uptime_s,
            "power": self.throttle.as_json() if self.throttle else None,
            "card": self.card.as_json() if self.card else None,
            "sound_cards": self.sound_cards,
            "amplifier": self.amplifier,
            "modem": None
            if m is None
            else {"registered": m.registered, "access": m.access, "data": self.modem_data},
        }


@dataclass
class Sources:
    """What the monitor samples besides the kernel files (all optional)."""

    storage_dir: Path
    roots: Roots = field(default_factory=Roots)
    modem: Callable[[], ModemReading | None] | None = None
    modem_iface: str = ""
    amplifier: object | None = None
    use_vcgencmd: bool = True
    display_kind: str = "none"
    display_path: str = ""
    also: tuple[Callable[[], None], ...] = ()  # other blocking refreshes (an RTC clock source)


def sample(src: Sources) -> Snapshot:
    """Read every probe once (blocking I/O: call from a worker thread)."""
    r = src.roots
    for refresh in src.also:
        try:
            refresh()
        except Exception:
            log.exception("refresh failed")
    modem = _safe(src.modem) if src.modem is not None else None
    return Snapshot(
        cpu_temp_c=cpu_temp_c(r.sys),
        load1=load1(r.proc),
        mem_used_pct=mem_used_pct(r.proc),
        disk_free_mb=disk_free_mb(src.storage_dir),
        system_uptime_s=system_uptime_s(r.proc),
        throttle=throttle(r.sys, use_vcgencmd=src.use_vcgencmd),
        card=card_health([Path("/"), src.storage_dir], sys_root=r.sys, proc_root=r.proc),
        sound_cards=sound_cards(r.proc),
        modem=modem,
        modem_data=data_bytes(src.modem_iface, r.sys) if src.modem_iface else None,
        amplifier=amplifier_state(src.amplifier) if src.amplifier is not None else None,
        display_present=display_present(
            src.display_kind, src.display_path, dev_root=r.dev, sys_root=r.sys
        ),
    )


def _safe(fn: Callable[[], ModemReading | None]) -> ModemReading | None:
    try:
        return fn()
    except Exception:
        log.exception("modem reading failed")
        return None


def changes(prev: Snapshot | None, cur: Snapshot) -> list[Event]:
    """Events for what got worse (or came back) between two snapshots.

    The first snapshot is compared with a healthy device, so a card already read-only
    or an under-voltage before the agent started is reported once at start.
    """
    out: list[Event] = []
    before_ro = set(prev.card.read_only) if prev and prev.card else set()
    if cur.card is not None:
        for point in cur.card.read_only:
            if point not in before_ro:
                out.append(
                    (
                        "error",
                        "card_read_only",
                        f"{point} is mounted read-only (the SD card is failing): "
                        "media and proofs cannot be saved; replace the card",
                    )
                )
        before_err = prev.card.fs_errors if prev and prev.card else None
        if cur.card.fs_errors and (before_err is None or cur.card.fs_errors > before_err):
            out.append(
                (
                    "warning",
                    "storage_errors",
                    f"filesystem errors on the SD card: {cur.card.fs_errors} so far",
                )
            )
    was = prev.throttle if prev else None
    now = cur.throttle
    if now is not None and _under_voltage_news(was, now):
        state = "now" if now.under_voltage_now else "since boot"
        out.append(
            (
                "warning",
                "under_voltage",
                f"power supply under-voltage ({state}): check the supply and its cable",
            )
        )
    if prev is not None and prev.modem is not None and cur.modem is None:
        out.append(("warning", "modem_lost", "the cellular modem stopped answering"))
    if prev is not None and prev.modem is None and cur.modem is not None:
        out.append(("info", "modem_back", "the cellular modem answers again"))
    return out


def _under_voltage_news(was: Throttle | None, now: Throttle) -> bool:
    """A first sign of under-voltage, or under-voltage again *now* after it had passed."""
    if not (now.under_voltage_now or now.under_voltage_since_boot):
        return False
    if was is None or not (was.under_voltage_now or was.under_voltage_since_boot):
        return True
    return now.under_voltage_now and not was.under_voltage_now


class HealthMonitor:
    """Owns the sampling task; `snapshot` is what the heartbeat reads."""

    def __init__(self, src: Sources, *, every_s: float, event: EventSink) -> None:
        self._src = src
        self._event = event
        self.snapshot: Snapshot | None = None
        self._modem_seen = False
        self._loop = Periodic("health", every_s, self.poll_once)

    async def poll_once(self) -> Snapshot:
        cur = await asyncio.to_thread(sample, self._src)
        prev = self.snapshot
        for level, code, detail in changes(prev, cur):
            if code == "modem_back" and not self._modem_seen:
                continue
            await self._event(level, code, detail)
        if cur.modem is not None:
            self._modem_seen = True
        self.snapshot = cur
        return cur

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._loop.task

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
