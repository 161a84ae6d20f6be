"""An in-process `Output` (agent/playout/output.py) that records what it was asked to
do and fails loudly on anything unexpected, the way luma's dummy device keeps its
last image: for tests of the middle layer (planner loops, coordinator, handlers).

"Playing" is time passing on the real loop: a playback starts at `max(now, at_wall)`
and completes after its media's duration minus the offset. Anything a correct
planner never asks (an item of a kind this output does not serve, media it did not
prepare, two playbacks at once, stopping one that is not playing) is recorded in
`errors` *and* raised; the runner's loop catches exceptions to keep a device
sounding, so every test must end with `assert_clean()` (the fixture does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.model import AlertStart, ScheduleItem
from agent.playout.output import Media, Output, OutputStatus, Playback, TestReport


@dataclass(frozen=True)
class FakeMedia:
    owner: FakeOutput
    label: str  # item id, "alert:<id>" or "test"
    duration: float

    @property
    def duration_s(self) -> float | None:
        return self.duration


@dataclass
class Played:
    """One `play()` call and what became of it."""

    label: str
    at_wall: float | None
    offset_s: float
    volume: int
    use_master: bool
    pb: Playback
    asked_at: float = field(default_factory=time.time)


class FakeOutput(Output):
    def __init__(
        self,
        name: str,
        kinds: Sequence[str],
        *,
        test_what: str = "",
        durations: dict[str, float] | None = None,
        alert_s: float = 1.0,
        test_s: float = 0.2,
    ) -> None:
        self.name = name
        self.kinds = frozenset(kinds)
        self.test_what = test_what
        self.ok = True
        self.durations = dict(durations or {})
        self.default_s = 1.0
        self.alert_s = alert_s
        self.test_s = test_s
        self.played: list[Played] = []
        self.prepared: list[str] = []
        self.master: int | None = None
        self.errors: list[str] = []
        self._active: Played | None = None
        self._timer: asyncio.TimerHandle | None = None

    # ---- failing loudly ----------------------------------------------------------------
    def _unexpected(self, what: str) -> AssertionError:
        msg = f"fake output {self.name!r}: {what}"
        self.errors.append(msg)
        return AssertionError(msg)

    def assert_clean(self) -> None:
        assert not self.errors, self.errors

    # ---- what a test reads ---------------------------------------------------------------
    def labels(self) -> list[str]:
        return [p.label for p in self.played]

    def now_playing(self) -> str | None:
        return None if self._active is None else self._active.label

    # ---- Output ----------------------------------------------------------------------------
    def status(self) -> OutputStatus:
        return OutputStatus(self.ok, f"fake:{self.name}" if self.ok else None)

    async def prepare(self, item: ScheduleItem, paths: Sequence[Path]) -> Media:
        if item.kind not in self.kinds:
            raise self._unexpected(f"asked to prepare {item.kind!r} item {item.id!r}")
        for p in paths:
            if not p.is_file():
                raise self._unexpected(f"media path {p} is not a file")
        self.prepared.append(item.id)
        return FakeMedia(self, item.id, self.durations.get(item.id, self.default_s))

    async def prepare_alert(
        self,
        args: AlertStart,
        paths: Sequence[Path],
        shas: Sequence[str],
        warnings: list[str] | None = None,
    ) -> Media:
        if len(paths) != len(shas):
            raise self._unexpected(f"{len(paths)} alert paths but {len(shas)} hashes")
        self.prepared.append(f"alert:{args.alert_id}")
        return FakeMedia(self, f"alert:{args.alert_id}", self.alert_s)

    async def prepare_test(self) -> Media:
        return FakeMedia(self, "test", self.test_s)

    def play(
        self,
        media: Media,
        *,
        at_wall: float | None = None,
        offset_s: float = 0.0,
        volume: int = 100,
        use_master: bool = True,
    ) -> Playback:
        if not isinstance(media, FakeMedia) or media.owner is not self:
            raise self._unexpected(f"asked to play media it did not prepare: {media!r}")
        if not 0 <= volume <= 100 or offset_s < 0:
            raise self._unexpected(f"volume {volume} / offset {offset_s} out of range")
        if self._active is not None:
            raise self._unexpected(
                f"asked to play {media.label!r} while {self._active.label!r} still plays"
            )
        pb = Playback(media, at_wall)
        rec = Played(media.label, at_wall, offset_s, volume, use_master, pb)
        self.played.append(rec)
        if not self.ok:
            pb.finish("failed", "output_unavailable")
            return pb
        loop = asyncio.get_running_loop()
        now = time.time()
        first = max(now, at_wall or now)
        self._active = rec
        # Output-measured times: the fake's "DAC" is the wall clock at these instants.
        loop.call_later(first - now, self._started, rec, first)
        remaining = max(0.0, media.duration - offset_s)
        self._timer = loop.call_later(first - now + remaining, self._end, rec, "completed")
        return pb

    def _started(self, rec: Played, first: float) -> None:
        if rec.pb.outcome is None:
            rec.pb.started(first)

    def _end(self, rec: Played, outcome: str) -> None:
        if self._active is rec:
            self._active = None
            if self._timer is not None:
                self._timer.cancel()
        now = time.time()
        first = rec.pb.first_wall
        played = 0 if first is None else round((now - first) * 1000)
        rec.pb.finish(outcome, None, ended_wall=now, played_ms=played)  # type: ignore[arg-type]

    def preempt(self, pb: Playback) -> None:
        self._halt(pb, "preempted")

    def stop(self, pb: Playback) -> None:
        self._halt(pb, "cancelled")

    def _halt(self, pb: Playback, outcome: str) -> None:
        if self._active is None or self._active.pb is not pb:
            if pb.outcome is not None:
                return  # it ended by itself a moment ago: a race the engine has too
            raise self._unexpected(f"asked to end ({outcome}) a playback that is not playing")
        self._end(self._active, outcome)

    def set_master(self, level: int) -> None:
        if not 0 <= level <= 100:
            raise self._unexpected(f"master level {level}")
        self.master = level

    async def judge_test(self, pb: Playback) -> TestReport:
        if pb.outcome != "completed":
            return TestReport(False, f"test {pb.outcome}", f"{self.name}_failed")
        return TestReport(True, f"{self.name} test played")

    async def close(self) -> None:
        if self._active is not None:
            self._end(self._active, "cancelled")
