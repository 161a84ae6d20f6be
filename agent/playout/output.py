"""The output interface: what one planner loop drives (a speaker today, a board next).

An *output* is one physical way the device reaches people: the speaker (the audio
engine) or a board (an LED matrix or screen). Each output gets its own planner loop
(`agent.playout.runner.Playout`), fed only the schedule items whose `kind` it serves
(`Output.kinds`), with its own durable planner state (`Output.state_key`), and its
own proofs. The alert coordinator (`agent.playout.coordinator.AlertCoordinator`)
sits above the loops and fans `alert.start`/`alert.stop`/`alert.cap` and `test.run`
out to every output the device has; so a device with a speaker, a board, or both
runs the same code.

What the planner loop asks of an output, in order:

1. `prepare(item, paths)` ahead of an occurrence (its media files, verified, in the
   order of `agent.scheduler.item_media(item)`), `prepare_alert(args, paths, shas)`
   when an alert arrives, `prepare_test()` for `test.run`. Each returns a `Media`:
   an opaque, ready-to-start object of the output's own type whose `duration_s` the
   planner uses for `join` resumes and quiet-hours checks (None: unknown/endless).
   Preparing may be slow (decoding, rendering); it runs well before the start.
2. `play(media, at_wall=..., offset_s=..., volume=..., use_master=...)` returns a
   `Playback` at once, never blocking. `at_wall` is the wall time (`time.time()`)
   at which the first sample/frame must *reach the output* (None: as soon as
   possible); the output places it on the exact sample/frame. Starting a new
   playback pre-empts whatever the output shows/plays at that instant.
3. `preempt(pb)` / `stop(pb)`: end it within one buffer/frame; its outcome becomes
   `preempted` / `cancelled`.
4. The output fills the `Playback` as it goes, with times *measured at the output*
   (first sample at the DAC, first frame on the panel), never when `play()` was
   called, and calls `Playback.finish()` exactly when the last sample/frame has left;
   `Playback.done` then resolves and the loop writes the proof from those fields.
5. `judge_test(pb)` after a `test.run` playback ended: the second ack's result.

Rules an implementation must keep:

* `play()` must not raise for an output that is down: return a Playback already
  finished `failed` with reason `output_unavailable` (the planner proves it and
  moves on; an alert on another output still sounds).
* Never block the event loop: file, decode and render work go to threads or
  subprocesses.
* `status()` is cheap (it is read by every heartbeat).
* Hardware is imported only by the implementation, only when configured.

The speaker's implementation is `agent.playout.speaker.SpeakerOutput`; a recording
fake for tests is `tests/support/fake_output.py`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from agent.model import AlertStart, ScheduleItem

PlaybackOutcome = Literal["completed", "preempted", "cancelled", "failed"]


class Media(Protocol):
    """Something an output prepared and can start at once (its own opaque type).

    The audio engine's `playback.prepared.Prepared` is one; a board's rendered slide
    sequence another. The planner reads only `duration_s`. A Media made of derived
    files (decoded audio, rendered frames) also has `files: tuple[Path, ...]`
    (optional): those are kept from cache eviction while it is prepared or playing.
    """

    @property
    def duration_s(self) -> float | None: ...


@dataclass(frozen=True)
class OutputStatus:
    """For the heartbeat (`audio` / `display`, PROTOCOL §6.2) and for refusing work.

    `ok`: the output can play now. `device`: what it opened (ALSA/Pulse name, fb
    path, …) or None. `detail`: further heartbeat fields the output wants shown
    (e.g. a board's power state and what it shows).
    """

    ok: bool
    device: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TestReport:
    """The result of `test.run` on one output (the second ack, PROTOCOL §4)."""

    __test__: ClassVar[bool] = False  # not a pytest class

    ok: bool
    detail: str
    code: str | None = None  # for a failed test: e.g. `speaker_failed`, `not_heard`


class Playback:
    """One `Output.play()` request, filled in by the output as it happens.

    All times are wall-clock seconds measured at the output. `extra` holds
    output-specific proof fields (e.g. a board's `frame_sha256`), merged into the
    proof record. `done` resolves after `finish()`; it carries no value, so an ended
    Playback is freed by reference counting alone (a future holding the Playback that
    holds it would be a cycle: a board's 1080p frames kept until a full collection).
    """

    def __init__(self, media: Media, at_wall: float | None) -> None:
        self.media = media
        self.at_wall = at_wall
        self.first_wall: float | None = None  # first sample/frame reached the output
        self.ended_wall: float | None = None  # last sample/frame left it (None: never began)
        self.played_ms = 0
        self.level_dbfs: float | None = None  # RMS of what was sent (sound only)
        self.outcome: PlaybackOutcome | None = None
        self.reason: str | None = None
        self.extra: dict[str, Any] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def started(self, first_wall: float) -> None:
        """The output reports its first sample/frame out at `first_wall`."""
        self.first_wall = first_wall

    def finish(
        self,
        outcome: PlaybackOutcome,
        reason: str | None = None,
        *,
        ended_wall: float | None = None,
        played_ms: int | None = None,
    ) -> None:
        """End this playback (idempotent: the first call wins) and resolve `done`.

        Call it when the last sample/frame has left the output, not when it was
        queued. `ended_wall` is ignored (None) if nothing ever started.
        """
        if self.outcome is not None:
            return
        self.outcome = outcome
        self.reason = reason
        self.ended_wall = ended_wall if self.first_wall is not None else None
        if played_ms is not None:
            self.played_ms = played_ms
        if not self.done.done():
            self.done.set_result(None)

    def __repr__(self) -> str:
        return f"<Playback {self.outcome or 'playing'} first={self.first_wall}>"


class Output(ABC):
    """One output the planner drives. Subclass it; see the module docstring.

    Class attributes (or instance attributes set in `__init__`):

    * `name`: unique on the device, e.g. "speaker", "board". It keys the output's
      planner state (`state_key`) and prefixes its proof ids (except the speaker's,
      kept unprefixed for compatibility).
    * `kinds`: the schedule item kinds it plays (`{"audio"}`, `{"slides"}`); the
      planner loop never sees items of any other kind.
    * `test_what`: the `test.run` `what` it answers (`speaker` / `display`).
    * `live`: whether live streams (`live.start`) are relayed on it (speaker only).
    """

    name: str = "output"
    kinds: frozenset[str] = frozenset()
    test_what: str = ""
    live: bool = False

    @property
    def state_key(self) -> str:
        """Where this output's planner state is persisted (agent.state)."""
        return "playout.planner" if self.name == "speaker" else f"playout.planner.{self.name}"

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Open the device (return once open or first failed; retry on its own after)."""
        return None

    async def close(self) -> None:
        """Stop everything and release the device (every open Playback ends)."""
        return None

    def tasks(self) -> Sequence[asyncio.Task[None]]:
        """Long-lived tasks the output runs itself (after `start()`); the agent watches
        them in its liveness registry (agent/liveness.py). Default: none."""
        return ()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the device to be open; True when it is."""
        return self.status().ok

    @abstractmethod
    def status(self) -> OutputStatus: ...

    # ---- preparing ---------------------------------------------------------------------
    @abstractmethod
    async def prepare(self, item: ScheduleItem, paths: Sequence[Path]) -> Media:
        """Make schedule item `item` ready to start; `paths` are its verified media files
        in the order of `item_media(item)`. Raise (any Exception) if it cannot be played."""

    @abstractmethod
    async def prepare_alert(
        self,
        args: AlertStart,
        paths: Sequence[Path],
        shas: Sequence[str],
        warnings: list[str] | None = None,
    ) -> Media:
        """Build an alert's whole programme (PROTOCOL §5.3: chime/banner, text, media,
        repeats with gaps) from its cached media (`paths`, hashes `shas`). What will not
        happen as asked (e.g. speech in an unknown language) is appended to `warnings`."""

    @abstractmethod
    async def prepare_test(self) -> Media:
        """What `test.run` plays/shows on this output (a tone, a test pattern)."""

    # ---- playing -----------------------------------------------------------------------
    @abstractmethod
    def play(
        self,
        media: Media,
        *,
        at_wall: float | None = None,
        offset_s: float = 0.0,
        volume: int = 100,
        use_master: bool = True,
    ) -> Playback:
        """Start `media` at `at_wall` (None: now), `offset_s` into it, at `volume`
        (0–100; scaled by the master volume when `use_master`; emergencies pass
        False). Never raises for a device that is down (see the module rules)."""

    def expect(self, at_wall: float | None) -> None:
        """The loop's next planned start (None: nothing planned). An output that needs
        warming up (an amplifier, a screen waking) starts doing so ahead of it, so
        the start is on time after any silence. Default: nothing to do."""
        return None

    @abstractmethod
    def preempt(self, pb: Playback) -> None:
        """End `pb` within one buffer/frame; outcome `preempted`."""

    @abstractmethod
    def stop(self, pb: Playback) -> None:
        """End `pb` within one buffer/frame; outcome `cancelled`."""

    def set_master(self, level: int) -> None:
        """Master volume/brightness level 0–100 (`volume.set`); default: ignored."""
        return None

    async def judge_test(self, pb: Playback) -> TestReport:
        """Judge a finished `test.run` playback (default: it completed)."""
        if pb.outcome == "completed":
            return TestReport(True, f"{self.test_what or self.name} test played")
        return TestReport(False, f"test {pb.outcome}: {pb.reason}", f"{self.name}_failed")
