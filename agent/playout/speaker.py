"""The speaker as an `Output` (agent/playout/output.py): the audio engine behind it.

A thin adapter: media are `playback.prepared.Prepared` (decoded PCM), a Playback
mirrors one engine `Voice` (first sample at the DAC, last sample out, level sent),
and `test.run speaker` is the 1 kHz tone judged by the monitoring input if any.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from agent.model import AlertStart, ScheduleItem
from agent.playout.output import Media, Output, OutputStatus, Playback, TestReport
from playback.alert import build_alert
from playback.engine import AudioEngine, Voice
from playback.levels import volume_to_gain
from playback.monitor import LevelMonitor
from playback.prepared import Prepared
from playback.selftest import judge_tone, tone_prepared

# How long `test.run speaker` waits for a monitor input that is still opening.
MONITOR_GRACE_S = 3.0


class SpeakerOutput(Output):
    name = "speaker"
    kinds = frozenset({"audio"})
    test_what = "speaker"
    live = True

    def __init__(self, engine: AudioEngine, monitor: LevelMonitor | None = None) -> None:
        self.engine = engine
        self.monitor = monitor

    async def start(self) -> None:
        await self.engine.start()

    async def close(self) -> None:
        await self.engine.stop()

    def tasks(self) -> Sequence[asyncio.Task[None]]:
        return self.engine.tasks

    async def wait_ready(self, timeout: float) -> bool:
        return await self.engine.wait_ready(timeout)

    def status(self) -> OutputStatus:
        st = self.engine.status()
        return OutputStatus(st.ok, st.device)

    async def prepare(self, item: ScheduleItem, paths: Sequence[Path]) -> Media:
        if not paths:
            raise ValueError(f"item {item.id!r} has no audio media")
        return await self.engine.prepare(list(paths), [m.sha256 for m in item.media])

    async def prepare_alert(
        self,
        args: AlertStart,
        paths: Sequence[Path],
        shas: Sequence[str],
        warnings: list[str] | None = None,
    ) -> Media:
        return await build_alert(
            self.engine, media=paths, sha256s=shas, text=args.text, lang=args.lang,
            repeat=args.repeat, gap_s=args.gap_s, chime=args.chime, warnings=warnings,
        )  # fmt: skip

    async def prepare_test(self) -> Media:
        return await tone_prepared(self.engine)

    def play(
        self,
        media: Media,
        *,
        at_wall: float | None = None,
        offset_s: float = 0.0,
        volume: int = 100,
        use_master: bool = True,
    ) -> Playback:
        voice = self.engine.play(
            cast(Prepared, media),
            at_wall=at_wall,
            offset_s=offset_s,
            gain=volume_to_gain(volume),
            use_master=use_master,
        )
        pb = _SpeakerPlayback(media, voice.at_wall, voice)
        if voice.outcome is not None:  # refused at once (device down)
            _mirror(pb, voice)
        else:
            voice.done.add_done_callback(lambda _f: _mirror(pb, voice))
        return pb

    def expect(self, at_wall: float | None) -> None:
        self.engine.expect(at_wall)

    def preempt(self, pb: Playback) -> None:
        self.engine.preempt(_voice(pb))

    def stop(self, pb: Playback) -> None:
        self.engine.stop_voice(_voice(pb))

    def set_master(self, level: int) -> None:
        self.engine.set_master(volume_to_gain(level))

    async def judge_test(self, pb: Playback) -> TestReport:
        monitor = self.monitor
        # Just after start-up the input may still be opening: give it a moment. A
        # monitor that is itself down cannot judge the speaker: test without it and
        # say so, rather than blame the speaker (`monitor_unavailable` was sent).
        if monitor is not None and not await monitor.wait_ready(MONITOR_GRACE_S):
            monitor = None
        res = await judge_tone(
            outcome=pb.outcome, reason=pb.reason, first_wall=pb.first_wall,
            ended_wall=pb.ended_wall, level_dbfs=pb.level_dbfs, monitor=monitor,
        )  # fmt: skip
        detail = f"{res.detail}; level {res.level_dbfs} dBFS"
        if monitor is not None:
            heard = "nothing" if res.heard_dbfs is None else f"{res.heard_dbfs} dBFS"
            detail += f"; heard {heard}"
        elif self.monitor is not None:
            detail += "; not verified: monitor unavailable"
        # Sent but not heard is what acoustic verification exists to catch (a dead
        # amplifier, a cut cable, a muted horn): say so apart from a failed output.
        not_heard = not res.ok and monitor is not None and "not hear" in res.detail
        code = None if res.ok else "not_heard" if not_heard else "speaker_failed"
        return TestReport(res.ok, detail, code)


class _SpeakerPlayback(Playback):
    def __init__(self, media: Media, at_wall: float | None, voice: Voice) -> None:
        super().__init__(media, at_wall)
        self.voice = voice


def _voice(pb: Playback) -> Voice:
    if not isinstance(pb, _SpeakerPlayback):
        raise TypeError(f"{pb!r} was not started by the speaker")
    return pb.voice


def _mirror(pb: Playback, voice: Voice) -> None:
    """Copy what the engine measured into the Playback and end it."""
    if voice.first_sample_wall is not None:
        pb.started(voice.first_sample_wall)
    pb.level_dbfs = voice.level_dbfs
    outcome = voice.outcome or "failed"
    pb.finish(outcome, voice.reason, ended_wall=voice.ended_wall, played_ms=voice.played_ms)
