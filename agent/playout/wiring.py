"""Builds the sound side of the agent from the configuration (used by agent/service.py).

With `[audio] output = "none"` nothing is built: sound commands then stay
`not_supported`, exactly as on a board without speakers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.dispatch import Dispatcher
from agent.handlers import VOLUME_KEY, load_schedule
from agent.model import ScheduleSet
from agent.playout.handlers import PlayoutHandlers
from agent.playout.live import LiveHandlers, LiveRelay
from agent.playout.runner import Playout, PlayoutDeps
from agent.reporter import Reporter
from agent.state import StateStore
from drivers.amplifier import Amplifier
from playback.engine import AudioEngine
from playback.levels import volume_to_gain
from playback.monitor import LevelMonitor

log = logging.getLogger(__name__)

PLANNER_KEY = "playout.planner"
# How long a monitor input may take to deliver its first block before the operator is warned.
MONITOR_READY_S = 15.0


@dataclass
class SoundSide:
    engine: AudioEngine
    playout: Playout
    handlers: PlayoutHandlers
    live: LiveHandlers | None = None
    monitor: LevelMonitor | None = None

    async def on_schedule(self, s: ScheduleSet) -> list[str]:
        return self.playout.set_schedule(s.items)

    def on_volume(self, level: int) -> None:
        self.playout.set_volume(level)
        if self.live is not None:
            self.live.relay.volume = level

    def register(self, dispatcher: Dispatcher) -> None:
        self.handlers.register(dispatcher)
        if self.live is not None:
            self.live.register(dispatcher)

    def audio(self) -> dict[str, Any]:
        st = self.engine.status()
        return {"ok": st.ok, "device": st.device}

    async def stop(self) -> None:
        if self.live is not None:
            await self.live.relay.stop()
        await self.playout.stop()
        await self.engine.stop()
        if self.monitor is not None:
            await self.monitor.stop()


async def start_sound(
    cfg: Config,
    state: StateStore,
    reporter: Reporter,
    *,
    clock_trusted: Callable[[], bool],
    wall: Callable[[], float],
    media_path: Callable[[str], Awaitable[Path | None]],
    amplifier: Amplifier | None = None,
) -> SoundSide | None:
    if cfg.audio.output.strip().lower() == "none":
        return None
    storage = cfg.storage.dir
    emit = reporter.emit

    engine = AudioEngine(
        cfg.audio.output, cfg.audio.sample_rate, storage / "pcm", emit_event=emit,
        amp_lead_s=cfg.audio.amp_lead_s, amp_idle_s=cfg.audio.amp_idle_s,
        tts_voice=cfg.audio.tts_voice, amplifier=amplifier,
    )  # fmt: skip
    await engine.start()
    # The persisted master volume, on the same curve as `volume.set`, before anything
    # (a stored schedule, a resumed item) can sound.
    volume = int(state.get(VOLUME_KEY, 100))
    engine.set_master(volume_to_gain(volume))

    monitor = start_monitor(cfg, emit)

    def save(text: str) -> None:
        state.set(PLANNER_KEY, text)

    playout = Playout(
        PlayoutDeps(
            engine=engine,
            tz=cfg.device.timezone,
            media_path=media_path,
            proof=reporter.proof,
            load_state=lambda: state.get(PLANNER_KEY),
            save_state=save,
            quiet=cfg.audio.quiet_hours,
            clock_trusted=clock_trusted,
            wall=wall,
            heard=monitor.heard_dbfs_settled if monitor is not None else None,
        )
    )
    relay = LiveRelay(
        cfg.audio.output,
        tz=cfg.device.timezone,
        proof=reporter.proof,
        wake=playout.wake,
        wall=wall,
        ca_file=cfg.audio.live_ca_file,
    )
    relay.volume = volume
    relay.heard = playout.d.heard
    playout.live = relay
    sched = load_schedule(state)
    await playout.start()
    if sched is not None:
        playout.set_schedule(sched.items)
    handlers = PlayoutHandlers(
        playout, engine, media_path, cfg.alerts, wall=wall, monitor=monitor
    )
    live = LiveHandlers(relay, output_ok=lambda: engine.status().ok)
    return SoundSide(engine, playout, handlers, live, monitor)


def start_monitor(
    cfg: Config, emit: Callable[[str, str, str], None]
) -> LevelMonitor | None:
    """The acoustic-verification input (`[audio] monitor`), or None when not configured.

    One that cannot open is kept anyway (it retries on its own, as a USB microphone
    may come later): the operator gets a `monitor_unavailable` warning and proofs
    simply carry no `heard_dbfs` until it hears again.
    """
    device = cfg.audio.monitor.strip()
    if not device:
        return None

    def unavailable(why: str) -> None:
        log.warning("audio monitor %r unavailable: %s", device, why)
        emit("warning", "monitor_unavailable", f"monitor input {device!r}: {why}"[:200])

    # Started in the background: the agent must not wait on a microphone to come up.
    monitor = LevelMonitor(
        device, cfg.audio.sample_rate, on_unavailable=unavailable, ready_s=MONITOR_READY_S
    )
    monitor.start()
    return monitor
