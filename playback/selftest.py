"""`test.run speaker`: play a tone and report what was sent and, if monitored, heard."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from playback.chime import tone, write_pcm
from playback.engine import AudioEngine
from playback.levels import volume_to_gain
from playback.monitor import LevelMonitor
from playback.prepared import Prepared

TONE_HZ = 1000.0
TONE_S = 1.0
HEARD_MIN_DBFS = -60.0  # a monitor hearing less than this heard nothing of the tone


@dataclass(frozen=True)
class SpeakerTest:
    ok: bool
    detail: str
    started_at: float | None
    ended_at: float | None
    level_dbfs: float | None
    heard_dbfs: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "started_at": self.started_at,
                "ended_at": self.ended_at, "level_dbfs": self.level_dbfs,
                "heard_dbfs": self.heard_dbfs}  # fmt: skip


async def tone_prepared(engine: AudioEngine) -> Prepared:
    """The self-test tone (1 kHz, 1 s) in the engine's format, written once."""
    path = engine.pcm_dir / f"selftest-{int(TONE_HZ)}.{engine.rate}x{engine.channels}.s16"
    samples = tone(TONE_HZ, TONE_S, engine.rate, level=0.5, edge_s=0.02)
    await asyncio.to_thread(write_pcm, samples, path, engine.channels)
    return Prepared.from_pcm([path], sample_rate=engine.rate, channels=engine.channels)


async def judge_tone(
    *,
    outcome: str | None,
    reason: str | None,
    first_wall: float | None,
    ended_wall: float | None,
    level_dbfs: float | None,
    monitor: LevelMonitor | None,
) -> SpeakerTest:
    """Judge a played tone from what the output measured and, if any, the monitor."""
    if outcome != "completed":
        return SpeakerTest(False, f"tone {outcome}: {reason}", first_wall, ended_wall,
                           level_dbfs, None)  # fmt: skip
    heard = None
    if monitor is not None and first_wall and ended_wall:
        await asyncio.sleep(0.3)  # let the monitor's blocks covering the end arrive
        heard = monitor.heard_dbfs(first_wall + 0.05, ended_wall - 0.05)
        if heard is None or heard < HEARD_MIN_DBFS:
            return SpeakerTest(
                False,
                "tone sent but the monitor did not hear it",
                first_wall,
                ended_wall,
                level_dbfs,
                heard,
            )
    return SpeakerTest(True, "tone played", first_wall, ended_wall, level_dbfs, heard)


async def test_tone(
    engine: AudioEngine, monitor: LevelMonitor | None = None, *, volume: int = 60
) -> SpeakerTest:
    """Play a 1 kHz tone for 1 s at `volume` now (master ignored: a test must be audible).

    For the technician's CLI; the agent's `test.run` goes through the planner instead
    (agent/playout/coordinator.py), so it never interrupts what sounds.
    """
    prepared = await tone_prepared(engine)
    voice = engine.play(prepared, gain=volume_to_gain(volume), use_master=False)
    async with asyncio.timeout(TONE_S + 10):
        await asyncio.shield(voice.done)
    return await judge_tone(
        outcome=voice.outcome, reason=voice.reason, first_wall=voice.first_sample_wall,
        ended_wall=voice.ended_wall, level_dbfs=voice.level_dbfs, monitor=monitor,
    )  # fmt: skip


test_tone.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
