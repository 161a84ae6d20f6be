"""Builds the playout side from the configuration (used by agent/service.py): every
output (agent/playout/output.py), one planner loop per output, the alert coordinator.

With `[audio] output = "none"` and no board nothing is built: sound commands then
stay `not_supported`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.dispatch import Dispatcher
from agent.fsutil import scratch_dir
from agent.handlers import load_schedule, stored_volume
from agent.liveness import Liveness
from agent.model import MediaRef, ScheduleSet
from agent.playout.coordinator import AlertCoordinator
from agent.playout.handlers import InlineMedia, PlayoutHandlers
from agent.playout.live import LiveHandlers, LiveRelay
from agent.playout.output import Output
from agent.playout.runner import Playout, PlayoutDeps, Spawn
from agent.playout.speaker import SpeakerOutput
from agent.reporter import Reporter
from agent.scheduler.state import PlannerState
from agent.state import StateStore
from drivers.amplifier import Amplifier
from playback.engine import AudioEngine, EmitEvent
from playback.monitor import LevelMonitor

log = logging.getLogger(__name__)

# How long a monitor input may take to deliver its first block before the operator is warned.
MONITOR_READY_S = 15.0


@dataclass
class PlayoutSide:
    """Every output the device has, one planner loop each, and the coordinator above."""

    loops: list[Playout]
    coordinator: AlertCoordinator
    handlers: PlayoutHandlers
    speaker: SpeakerOutput | None = None
    live: LiveHandlers | None = None
    monitor: LevelMonitor | None = None

    @property
    def _media_path(self) -> Callable[[str], Awaitable[Path | None]]:
        return self.loops[0].d.media_path

    async def on_schedule(self, s: ScheduleSet) -> list[str]:
        warnings: list[str] = []
        for lp in self.loops:
            warnings += [w for w in lp.set_schedule(s.items) if w not in warnings]
        return warnings

    def on_volume(self, level: int) -> None:
        for lp in self.loops:
            lp.set_volume(level)
        if self.live is not None:
            self.live.relay.volume = level

    def register(self, dispatcher: Dispatcher) -> None:
        self.handlers.register(dispatcher)
        if self.live is not None:
            self.live.register(dispatcher)

    def audio(self) -> dict[str, Any] | None:
        if self.speaker is None:
            return None
        st = self.speaker.status()
        return {"ok": st.ok, "device": st.device}

    async def predecode(self, refs: list[MediaRef]) -> None:
        """Decode prefetched audio now (after `media.prefetch`): an alert naming it then
        starts without a decode. Failures only cost that head start."""
        if self.speaker is None:
            return
        engine = self.speaker.engine
        for ref in refs:
            if not ref.type.startswith("audio/"):
                continue
            path = await self._media_path(ref.sha256)
            if path is None:
                continue
            try:
                await engine.prepare([path], [ref.sha256])
            except Exception as e:  # a bad file fails when it is played, not here
                log.warning("cannot pre-decode %s: %s", ref.sha256[:12], e)
        if self.loops[0].d.derived_written is not None:
            await asyncio.to_thread(self.loops[0].d.derived_written)

    def display(self) -> dict[str, Any] | None:
        """The heartbeat's `display` (§6.2) from the first board output, else None.
        A board puts `kind` and anything else to show in `OutputStatus.detail`."""
        for lp in self.loops:
            out = lp.d.output
            if out.test_what == "display":
                st = out.status()
                return {"ok": st.ok, "kind": out.name, **st.detail}
        return None

    def playing(self) -> dict[str, Any] | None:
        """The heartbeat's `playing`: the first output (speaker first) playing something."""
        return next((p for lp in self.loops if (p := lp.playing()) is not None), None)

    def active_priority(self, cmd: str, name: str) -> int:
        """Priority of what a stop command names (PROTOCOL §3: `alert.stop` carries the
        priority of the alert it names, `live.stop` that of the session; 0 when none
        is active), for the dispatcher's key-scope check."""
        if cmd == "alert.stop":
            return self.coordinator.alert_priority(name)
        if cmd == "live.stop" and self.live is not None:
            s = self.live.relay.sessions.get(name)
            return 0 if s is None else s.args.priority
        return 0

    def media_arrived(self) -> None:
        """The cache stored new media: each loop prepares what now can sound soon."""
        for lp in self.loops:
            lp.media_arrived()

    def files_in_use(self) -> set[Path]:
        """Derived files the outputs need now (for the cache: never evicted)."""
        out: set[Path] = set()
        for lp in self.loops:
            for media in lp.media_in_use():
                out.update(getattr(media, "files", ()))
        return out

    def alert_id(self) -> str | None:
        return next((a for lp in self.loops if (a := lp.alert_id()) is not None), None)

    async def stop(self) -> None:
        await self.coordinator.close()
        if self.live is not None:
            await self.live.relay.stop()
        for lp in self.loops:
            await lp.stop()
        for lp in self.loops:
            await lp.d.output.close()
        if self.monitor is not None:
            await self.monitor.stop()


def speaker_output(
    cfg: Config, emit: EmitEvent, monitor: LevelMonitor | None, amplifier: Amplifier | None = None
) -> SpeakerOutput:
    engine = AudioEngine(
        cfg.audio.output, cfg.audio.sample_rate, scratch_dir(cfg.storage.dir / "pcm"),
        emit_event=emit, amplifier=amplifier,
        amp_lead_s=cfg.audio.amp_lead_s, amp_idle_s=cfg.audio.amp_idle_s,
        emergency_lead_s=cfg.audio.emergency_lead_s,
        tts_voice=cfg.audio.tts_voice,
    )  # fmt: skip
    return SpeakerOutput(engine, monitor)


def board_output(cfg: Config, emit: EmitEvent) -> Output | None:
    """The board output from `[display]` (agent/playout/board.py), or None for kind none."""
    if cfg.display.kind == "none":
        return None
    from agent.playout.board import SPEAKER_LATENCY_S, BoardOutput

    speaker = cfg.audio.output.strip().lower() != "none"
    return BoardOutput(
        cfg.display, tz=cfg.device.timezone, emit=emit,
        align_s=SPEAKER_LATENCY_S if speaker else 0.0,
    )  # fmt: skip


async def start_playout(
    cfg: Config,
    state: StateStore,
    reporter: Reporter,
    *,
    clock_trusted: Callable[[], bool],
    wall: Callable[[], float],
    media_path: Callable[[str], Awaitable[Path | None]],
    outputs: Sequence[Output] | None = None,
    spawn: Spawn | None = None,
    liveness: Liveness | None = None,
    derived_written: Callable[[], object] | None = None,
    amplifier: Amplifier | None = None,
    inline_media: InlineMedia | None = None,
) -> PlayoutSide | None:
    """Open every configured output and start one planner loop on each.

    `outputs` replaces the outputs built from the configuration (tests pass fakes).
    `spawn` runs each loop as a supervised part; `liveness` watches the outputs' tasks;
    `derived_written` is called (in a thread) after derived files were written;
    `inline_media` stores audio carried inside a CAP (`derefUri`) in the media cache.
    None when the device has no output at all (`[audio] output = "none"`, no board).
    """
    emit = reporter.emit
    monitor: LevelMonitor | None = None
    if outputs is None:
        built: list[Output] = []
        if cfg.audio.output.strip().lower() != "none":
            monitor = start_monitor(cfg, emit)
            built.append(speaker_output(cfg, emit, monitor, amplifier))
        if (board := board_output(cfg, emit)) is not None:
            built.append(board)
        outputs = built
    if not outputs:
        return None
    volume = stored_volume(state)
    sched = load_schedule(state)
    loops: list[Playout] = []
    speaker: SpeakerOutput | None = None
    live: LiveHandlers | None = None
    for out in outputs:
        await out.start()
        if liveness is not None:
            for task in out.tasks():
                liveness.watch_task(f"{out.name}.{task.get_name()}", task)
        # The persisted master volume, on the same curve as `volume.set`, before
        # anything (a stored schedule, a resumed item) can sound.
        out.set_master(volume)
        key = out.state_key

        def save(text: str, key: str = key) -> None:
            state.set(key, text)

        lp = Playout(
            PlayoutDeps(
                output=out,
                tz=cfg.device.timezone,
                media_path=media_path,
                proof=reporter.proof,
                load_state=lambda key=key: state.get_valid(  # type: ignore[misc]
                    key, planner_text, None
                ),
                save_state=save,
                quiet=quiet_hours_for(cfg, out),
                clock_trusted=clock_trusted,
                wall=wall,
                spawn=spawn,
                derived_written=derived_written,
                heard=(
                    monitor.heard_dbfs_settled
                    if monitor is not None and isinstance(out, SpeakerOutput)
                    else None
                ),
            )
        )
        if out.live and isinstance(out, SpeakerOutput):
            speaker = out
            relay = LiveRelay(
                cfg.audio.output,
                tz=cfg.device.timezone,
                proof=reporter.proof,
                wake=lp.wake,
                wall=wall,
                ca_file=cfg.audio.live_ca_file,
                require_tls=cfg.audio.live_require_tls,
            )
            relay.volume = volume
            relay.heard = lp.d.heard
            lp.live = relay
            live = LiveHandlers(relay, output_ok=lambda o=out: o.status().ok)  # type: ignore[misc]
        await lp.start()
        if sched is not None:
            lp.set_schedule(sched.items)
        loops.append(lp)
    coordinator = AlertCoordinator(loops, media_path, wall=wall)
    handlers = PlayoutHandlers(coordinator, cfg.alerts, wall=wall, inline_media=inline_media)
    return PlayoutSide(loops, coordinator, handlers, speaker, live, monitor)


def quiet_hours_for(cfg: Config, out: Output) -> Any:
    """Quiet hours silence speakers; boards stay lit in them unless configured dark."""
    if "audio" in out.kinds or cfg.display.dark_in_quiet_hours:
        return cfg.audio.quiet_hours
    return None


def planner_text(value: object) -> str:
    """A stored planner state that loads (else it is moved aside at start)."""
    if not isinstance(value, str):
        raise ValueError("planner state is not a JSON text")
    PlannerState.from_json(value)
    return value


def start_monitor(cfg: Config, emit: Callable[[str, str, str], None]) -> LevelMonitor | None:
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
