"""The field side of the agent: hardware drivers and health probes, built from the config.

`start_field()` builds the amplifier driver (handed to the audio engine), the modem
probe loop with its network-time clock source, an RTC clock source when one is fitted,
and the health monitor that fills the heartbeat and raises events on change. The
service starts it in one line and stops it in another; nothing here touches the link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from agent import clock_sources
from agent.config import Config
from agent.hardware import ModemService, build_amplifier
from agent.liveness import Liveness
from agent.probes.monitor import HealthMonitor, Snapshot, Sources
from agent.reports import Level
from drivers.amplifier import Amplifier

log = logging.getLogger(__name__)

# Probe rates: kernel files are cheap, but a Pi Zero has one core; once a heartbeat
# period (at most a minute) is enough to see a change before the province does.
HEALTH_MAX_S = 60.0


@dataclass
class FieldSide:
    amplifier: Amplifier | None  # None: no switched amplifier ([amplifier] kind = "none")
    monitor: HealthMonitor
    modem: ModemService | None
    rtc: clock_sources.RtcTime | None
    display_kind: str

    def health(self) -> Snapshot | None:
        return self.monitor.snapshot

    def display(self) -> dict[str, Any] | None:
        """Heartbeat `display` when no display driver reports one: is its device there?"""
        snap = self.monitor.snapshot
        if snap is None or snap.display_present is None:
            return None
        return {"ok": snap.display_present, "kind": self.display_kind}

    def register(self, live: Liveness) -> None:
        """Watch the polling tasks as parts; report findings as probes (never counted in
        the watchdog's health: a missing modem must not restart the loudspeaker)."""
        for name, task in (("health", self.monitor.task),
                           ("modem", self.modem.task if self.modem else None)):  # fmt: skip
            if task is not None:
                live.watch_task(name, task)
        live.add_probe("power", self._power)
        live.add_probe("card", self._card)
        if self.modem is not None:
            modem = self.modem
            live.add_probe("modem", lambda: None if modem.reading else "not answering")

    def _power(self) -> str | None:
        snap = self.monitor.snapshot
        t = snap.throttle if snap else None
        return "under-voltage now" if t is not None and t.under_voltage_now else None

    def _card(self) -> str | None:
        snap = self.monitor.snapshot
        card = snap.card if snap else None
        if card is not None and card.read_only:
            return "read-only: " + ", ".join(card.read_only)
        return None

    async def stop(self) -> None:
        await self.monitor.stop()
        if self.modem is not None:
            await self.modem.stop()
        if self.rtc is not None:
            clock_sources.unregister(self.rtc)
        close = getattr(self.amplifier, "close", None) if self.amplifier else None
        if callable(close):
            await asyncio.to_thread(close)


async def start_field(
    cfg: Config, event: Callable[[Level, str, str], Awaitable[None]]
) -> FieldSide:
    async def emit(level: str, code: str, detail: str) -> None:
        await event(cast(Level, level), code, detail)

    try:
        amplifier = build_amplifier(cfg.amplifier)
    except Exception as e:  # a missing relay must not stop the agent: sound goes on unswitched
        log.error("amplifier driver not available, sound goes on without it: %s", e)
        await emit("error", "amplifier_unavailable", f"[amplifier] {cfg.amplifier.kind}: {e}")
        amplifier = None
    modem = ModemService(cfg.modem, emit) if cfg.modem.enabled else None
    rtc: clock_sources.RtcTime | None = clock_sources.RtcTime()
    refresh: tuple[Callable[[], None], ...] = ()
    if rtc is not None and await asyncio.to_thread(rtc.present):
        clock_sources.register(rtc)
        refresh = (rtc.refresh,)
    else:
        rtc = None
    monitor = HealthMonitor(
        Sources(
            cfg.storage.dir,
            modem=(lambda: modem.reading) if modem is not None else None,
            modem_iface=cfg.modem.data_iface,
            amplifier=amplifier,
            also=refresh,
            display_kind=cfg.display.kind,
            display_path=cfg.display.path,
        ),
        every_s=min(HEALTH_MAX_S, float(cfg.report.heartbeat_s)),
        event=emit,
    )
    if modem is not None:
        modem.start()
    monitor.start()
    return FieldSide(amplifier, monitor, modem, rtc, cfg.display.kind)
