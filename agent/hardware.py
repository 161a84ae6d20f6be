"""Builds the hardware drivers the configuration asks for ([amplifier], [modem]).

The only place that knows which driver class goes with which config kind, so the
core is handed an `Amplifier` or a `ModemService` and never imports a hardware
library itself (pyserial and gpiod are imported only inside the drivers, only when
configured).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent import clock_sources
from agent.clock import kernel_ntp_synced
from agent.config import AmplifierConfig, ModemConfig
from agent.periodic import Periodic
from agent.probes.modem import ModemReading
from drivers.amplifier import Amplifier

log = logging.getLogger(__name__)

EventSink = Callable[[str, str, str], Awaitable[None]]


def build_relay(cfg: AmplifierConfig) -> Amplifier | None:
    """The relay driver for `cfg` ([amplifier], or [display.relay] for a screen), not
    switched yet; None for `kind = "none"`."""
    if cfg.kind == "serial-relay":
        from drivers.amp_serial import SerialRelayAmplifier

        return SerialRelayAmplifier(
            cfg.port,
            baud=cfg.baud,
            on_bytes=cfg.on_bytes,
            off_bytes=cfg.off_bytes,
            query_bytes=cfg.query_bytes,
            on_reply=cfg.on_reply,
            off_reply=cfg.off_reply,
        )
    if cfg.kind == "gpio":
        from drivers.amp_gpio import GpioAmplifier, open_line

        return GpioAmplifier(open_line(cfg.chip, cfg.line, active_low=cfg.active_low))
    return None


def build_amplifier(cfg: AmplifierConfig) -> Amplifier | None:
    """The configured amplifier switch; None for `kind = "none"` (nothing switched: the
    engine then never waits for an amplifier lead)."""
    relay = build_relay(cfg)
    if cfg.kind == "serial-relay" and relay is not None:
        # A relay left closed by a crash or power cut is opened now: the engine's timing
        # starts from "off" and would otherwise leave the amplifier humming until sound.
        # (A GPIO line is requested inactive, which is the same.)
        relay.off()
    return relay


class ModemService:
    """Owns the modem's probe loop (in a worker thread) and its network-time clock source."""

    def __init__(
        self,
        cfg: ModemConfig,
        event: EventSink,
        *,
        sys_root: Path = Path("/sys"),
        dev_root: Path = Path("/dev"),
        step_clock: bool = True,
    ) -> None:
        """`step_clock=False` never sets the system clock (tests run as root on a real one)."""
        from drivers.modem import Modem, UsbId

        self._cfg = cfg
        self._event = event
        self._step = step_clock and cfg.network_time
        self._pending: list[tuple[str, str, str]] = []
        self.modem = Modem(
            UsbId.parse(cfg.usb_id, cfg.interface),
            sys_root=sys_root,
            dev_root=dev_root,
            baud=cfg.baud,
            timeout_s=cfg.timeout_s,
            reset_after=cfg.reset_after,
            event=lambda *e: self._pending.append(e),
        )
        self.reading: ModemReading | None = None
        self.time_source = clock_sources.NetworkTime(self._network_time)
        self._loop = Periodic("modem", cfg.probe_s, self.probe_once)

    def _network_time(self) -> tuple[float, float] | None:
        return self.modem.network_time if self._cfg.network_time else None

    async def probe_once(self) -> ModemReading | None:
        self.reading = await asyncio.to_thread(self.modem.probe)
        if self._step and self.modem.network_time is not None:
            synced = await asyncio.to_thread(kernel_ntp_synced)
            step = clock_sources.step_clock
            await asyncio.to_thread(step, self.time_source, kernel_synced=synced)
        pending, self._pending = self._pending, []
        for level, code, detail in pending:
            await self._event(level, code, detail)
        return self.reading

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._loop.task

    def start(self) -> None:
        if self._cfg.network_time:
            clock_sources.register(self.time_source)
        self._loop.start()

    async def stop(self) -> None:
        clock_sources.unregister(self.time_source)
        await self._loop.stop()
        await asyncio.to_thread(self.modem.close)
