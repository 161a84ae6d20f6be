"""The asyncio loop around the pure planner (docs/SCHEDULER.md, "The runner's loop").

One loop per output (agent/playout/output.py: the speaker, a board). Its task owns
that output's planner state and playbacks: it plans, carries out the decision (stop,
start, skip proofs), persists the state, then sleeps until the decision's `wake_at`
or an event (a playback ended, a command changed the inputs). It sees only the
schedule items whose `kind` its output serves, so a `slides` item never sounds and
never pre-empts audio.
Commands never touch the planner state themselves; they change the inputs and wake
the loop, so every state change happens in one place and in order.

Start times are sample-exact: when the next planned instant is less than `AIM_S`
away, the loop plans *at* that instant and hands the output `at_wall`, so the first
sample/frame leaves on time instead of one event-loop wake-up late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from agent.model import ScheduleItem, is_emergency
from agent.playout.alerts import ActiveAlert, ActiveTest, finish
from agent.playout.live import LiveRelay
from agent.playout.output import Media, Output, Playback
from agent.playout.proofs import ProofKind, segment_proof, skip_proof
from agent.scheduler import (
    ActiveSource,
    PlanInputs,
    PlannerState,
    QuietHoursLike,
    StartOccurrence,
    StartSource,
    Stop,
    item_media,
    next_occurrence,
    plan,
    quiet_warnings,
)
from agent.wire import proof_id

log = logging.getLogger(__name__)

AIM_S = 1.0  # plan this close to a start instant at the instant itself (sample-exact start)
MAX_SLEEP_S = 30.0  # re-plan at least this often (clock trust may change silently)
PREPARE_AHEAD = timedelta(minutes=10)  # decode media this long before an occurrence
PREPARE_RETRY_S = 5.0  # look again this often for items (or media) newly in the look-ahead
STOP_WAIT_S = 3.0  # how long a stopped playback may take to report its last sample
TEST_VOLUME = 60  # `test.run` plays at this volume, master ignored (a test must be audible)
JOIN_LEAD_S = 0.25  # a `join` resume is aimed this far ahead (> output latency + a wake-up)
JUMP_S = 1.0  # wall minus monotonic changed this much: a step (NTP slews far less)
JUMP_CHECK_S = 1.0  # while asleep, compare the clocks this often (no I/O, cheap)

MediaPath = Callable[[str], Awaitable[Path | None]]
ProofSink = Callable[[dict[str, Any]], Awaitable[None]]
# RMS heard by the monitoring input between two wall times (None: it heard no data).
Heard = Callable[[float, float], Awaitable[float | None]]
Spawn = Callable[[str, Callable[[], Awaitable[None]]], None]


SegmentKind = ProofKind | Literal["test"]


@dataclass
class _Segment:
    """What is sounding/showing now under a planner key."""

    key: str
    kind: SegmentKind
    subject_id: str
    pb: Playback
    shas: tuple[str, ...]
    volume: int
    scheduled_at: datetime | None = None


@dataclass
class PlayoutDeps:
    """Where the runner reads and writes; the service fills these in."""

    output: Output
    tz: ZoneInfo
    media_path: MediaPath
    proof: ProofSink
    load_state: Callable[[], str | None]
    save_state: Callable[[str], None]
    quiet: QuietHoursLike | None = None
    clock_trusted: Callable[[], bool] = lambda: True
    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    heard: Heard | None = None  # set when `[audio] monitor` is configured
    # Runs the loop as a supervised part (agent/supervisor.py `Supervisor.start`):
    # restarted if it dies, shown in the liveness registry. None: a plain task.
    spawn: Spawn | None = None
    # Called (in a thread) after preparing wrote derived files: the cache trims itself
    # back within its quota (agent/cache/store.py `MediaCache.trim`).
    derived_written: Callable[[], object] | None = None


class Playout:
    def __init__(self, deps: PlayoutDeps) -> None:
        self.d = deps
        self.state = PlannerState()
        self.items: tuple[ScheduleItem, ...] = ()
        self.alerts: dict[str, ActiveAlert] = {}
        self.tests: dict[str, ActiveTest] = {}
        self.current: _Segment | None = None
        # Prepared media by `_prep_key`; pruned to the schedule's items on every change.
        self._prepared: dict[tuple[str, ...], Media] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._prep_task: asyncio.Task[None] | None = None
        self.live: LiveRelay | None = None  # set by wiring; VLC relays are planner sources
        self._wall_minus_mono: float | None = None  # to detect wall-clock steps
        self._prep_tried = float("-inf")  # monotonic time of the last look-ahead
        self._prep_again = False  # media arrived while a look-ahead ran: one more after it

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        stored = await asyncio.to_thread(self.d.load_state)
        if stored:
            try:
                self.state = PlannerState.from_json(stored)
            except ValueError as e:
                log.error("planner state unreadable, starting afresh: %s", e)
        gone = self.state.after_restart()
        if gone is not None and gone.kind != "test":  # a test's result was its ack
            kind: ProofKind = "audio" if gone.kind == "occurrence" else gone.kind
            subject = gone.key.split("@", 1)[0] if kind == "audio" else gone.key.split(":", 1)[1]
            await self.d.proof(
                segment_proof(
                    proof_id=self._pid(proof_id(gone.key, gone.since.timestamp())),
                    kind=self._item_kind(kind),
                    subject_id=subject,
                    tz=self.d.tz,
                    outcome="preempted",
                    reason="agent_restart",
                    started_wall=gone.since.timestamp(),
                )
            )
        await asyncio.to_thread(self.d.save_state, self.state.to_json())
        self._clock_stepped()  # the baseline: a step while the agent was down is not seen
        if self.d.spawn is not None:
            self.d.spawn(f"playout.{self.d.output.name}", self._loop)
        else:
            self._task = asyncio.create_task(self._loop(), name="playout")

    async def stop(self) -> None:
        for t in (self._task, self._prep_task):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    def wake(self) -> None:
        self._wake.set()

    # ---- inputs changed by commands ---------------------------------------------

    def set_schedule(self, items: Sequence[ScheduleItem]) -> list[str]:
        """A new schedule: returns the quiet-hours warnings for the ack.

        Only the items of the kinds this loop's output serves are kept.
        """
        self.items = tuple(i for i in items if i.kind in self.d.output.kinds)
        keep = {_prep_key(i) for i in self.items}
        for key in [k for k in self._prepared if k not in keep]:
            del self._prepared[key]  # what no item needs any more (memory stays bounded)
        self._prepare_soon()
        self.wake()
        now = datetime.fromtimestamp(self.d.wall(), UTC)
        return quiet_warnings(self.items, self.d.tz, self.d.quiet, now, timedelta(hours=24))

    def add_alert(self, alert: ActiveAlert) -> None:
        """Start (or, same alert_id, replace) an alert; the loop plays it by priority."""
        old = self.alerts.pop(alert.args.alert_id, None)
        if old is not None:
            key = old.key
            if self.current is not None and self.current.key == key:
                # An update replaces what sounds now: end the old segment here.
                seg, self.current = self.current, None
                self.d.output.stop(seg.pb)
                self.state.cancelled(key, datetime.fromtimestamp(self.d.wall(), UTC))
                asyncio.get_running_loop().create_task(self._segment_proof(seg, "cancelled"))
            finish(old, "cancelled", "updated")
        self.alerts[alert.args.alert_id] = alert
        self.wake()

    def remove_alert(self, alert_id: str, reason: str) -> ActiveAlert | None:
        """End an alert (alert.stop, `until`); the loop stops its sound and proves it."""
        alert = self.alerts.pop(alert_id, None)
        if alert is not None:
            alert.end_reason = reason
            if alert.segments == 0:
                # It never sounded (waiting behind a higher one): its only proof.
                asyncio.get_running_loop().create_task(self._unplayed_alert_proof(alert))
            finish(alert, "cancelled", reason)
            self.wake()
        return alert

    def add_test(self, test: ActiveTest) -> None:
        """Queue a `test.run` on this output: it plays like a priority-0 item."""
        self.tests[test.test_id] = test
        self.wake()

    def remove_test(self, test_id: str) -> None:
        """Withdraw a test that waited too long (it never pre-empts anything)."""
        test = self.tests.pop(test_id, None)
        if test is not None:
            self.wake()

    def alert_priority(self, alert_id: str) -> int | None:
        """Priority of active alert `alert_id` on this output (None: not active)."""
        a = self.alerts.get(alert_id)
        return None if a is None else a.args.priority

    def media_in_use(self) -> list[Media]:
        """Everything this loop has prepared, is playing or has waiting (alerts, tests):
        its derived files must not be evicted from the cache."""
        # list() copies in one step: the cache may ask from a download thread.
        media: list[Media] = list(self._prepared.values())
        media += [a.programme for a in list(self.alerts.values())]
        media += [t.media for t in list(self.tests.values())]
        if self.current is not None:
            media.append(self.current.pb.media)
        return media

    def emergency_active(self) -> bool:
        """Is an item of priority ≥ 90 sounding/showing here, or an alert or live
        session of that priority waiting to?"""
        p = self.state.playing
        if p is not None and is_emergency(p.priority):
            return True
        return any(is_emergency(s.priority) for s in self._inputs().active)

    def set_volume(self, level: int) -> None:
        self.d.output.set_master(level)

    # ---- what the heartbeat shows -------------------------------------------------

    def playing(self) -> dict[str, Any] | None:
        p = self.state.playing
        if p is None:
            return None
        if p.kind == "live":
            # VLC sounds a relay, not an output playback, so there is no `current`.
            subject, kind = p.key.split(":", 1)[1], "live"
        elif self.current is not None:
            subject, kind = self.current.subject_id, self.current.kind
        else:
            return None
        return {
            "item_id": subject,
            "kind": kind,
            "priority": p.priority,
            "since": p.since.astimezone(self.d.tz).isoformat(timespec="milliseconds"),
        }

    def alert_id(self) -> str | None:
        if self.current is not None and self.current.kind == "alert":
            return self.current.subject_id
        return None

    # ---- the loop ----------------------------------------------------------------

    def _inputs(self) -> PlanInputs:
        active = (
            tuple(
                ActiveSource("alert", a.args.alert_id, a.args.priority, a.since)
                for a in self.alerts.values()
            )
            + (self.live.sources() if self.live is not None else ())
            + tuple(ActiveSource("test", t.test_id, 0, t.since) for t in self.tests.values())
        )
        durations = {
            i.id: d
            for i in self.items
            if (p := self._prepared.get(_prep_key(i))) is not None
            and (d := p.duration_s) is not None
        }
        return PlanInputs(
            items=self.items,
            tz=self.d.tz,
            quiet=self.d.quiet,
            clock_trusted=self.d.clock_trusted(),
            active=active,
            durations=durations,
        )

    async def _loop(self) -> None:
        aim: float | None = None
        while True:
            self._wake.clear()
            try:
                aim = await self._step(aim)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("playout step failed")
                await self.d.output.wait_ready(0)
                aim = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._wake.wait()

    async def _step(self, aim: float | None) -> float | None:
        """One plan-and-act round; returns the wall instant to aim at next (or None)."""
        if self._clock_stepped():
            aim = None  # aimed on the old clock
        now = self.d.wall()
        await self._reap(now)
        at = max(now, aim) if aim is not None else now
        at_dt = datetime.fromtimestamp(at, UTC)
        decision = plan(at_dt, self._inputs(), self.state)
        stopped: _Segment | None = None
        if decision.stop is not None:
            stopped = self._stop(decision.stop, at_dt)
        if decision.start is not None:
            await self._start(decision.start, at_dt, at if at > self.d.wall() else None)
        if stopped is not None:
            await self._segment_proof(stopped, _stop_outcome(decision.stop))
        for sp in decision.proofs:
            item = next((i for i in self.items if i.id == sp.item_id), None)
            await self.d.proof(
                skip_proof(
                    sp,
                    self.d.tz,
                    proof_id=self._pid(sp.proof_id),
                    kind=self._item_kind(item.kind if item else None),
                    media_sha256=_shas(item) if item else (),
                    volume=item.volume if item else None,
                )
            )
        await asyncio.to_thread(self.d.save_state, self.state.to_json())
        # What may start next, so the output can warm up (amplifier lead) in time.
        self.d.output.expect(None if decision.wake_at is None else decision.wake_at.timestamp())
        return await self._sleep(decision.wake_at, at)

    async def _sleep(self, wake_at: datetime | None, planned_at: float) -> float | None:
        if self._wake.is_set():
            return None
        if wake_at is None:
            timeout = MAX_SLEEP_S
        else:
            target = wake_at.timestamp()
            if target <= planned_at:  # nothing new to aim at: avoid a hot loop
                target = planned_at + 0.05
            lead = target - self.d.wall()
            if lead <= AIM_S:
                return target
            timeout = min(MAX_SLEEP_S, lead - AIM_S * 0.8)
        # Sleep in slices so a wall-clock step is seen within JUMP_CHECK_S: the wake-up
        # instant was measured on the old clock (asyncio sleeps on the monotonic one).
        deadline = self.d.mono() + timeout
        while (left := deadline - self.d.mono()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, JUMP_CHECK_S)):
                    await self._wake.wait()
            if self._wake.is_set() or self._clock_step_pending():
                break
            self._maybe_prepare()
        return None

    def _clock_step_pending(self) -> bool:
        last = self._wall_minus_mono
        return last is not None and abs(self.d.wall() - self.d.mono() - last) >= JUMP_S

    def _clock_stepped(self) -> bool:
        """Did the wall clock step since the last look (wall minus monotonic changed)?

        If so, tell the planner before it plans (docs/SCHEDULER.md): anchors of what
        plays move with the clock, and a forward step's span is remembered so an
        emergency item jumped over still plays. Slow drift (NTP slewing) never adds
        up to a step because the baseline follows every look.
        """
        offset = self.d.wall() - self.d.mono()
        last, self._wall_minus_mono = self._wall_minus_mono, offset
        if last is None or abs(offset - last) < JUMP_S:
            return False
        log.warning("wall clock stepped by %+.3f s", offset - last)
        self.state.clock_jumped(offset - last)
        return True

    async def _reap(self, now: float) -> None:
        """Feed back a playback that ended by itself (its media ran out, or it failed)."""
        seg = self.current
        if seg is None or not seg.pb.done.done():
            return
        self.current = None
        v = seg.pb
        at = datetime.fromtimestamp(v.ended_wall or now, UTC)
        if v.outcome == "completed":
            outcome = self.state.finished(seg.key, at)
        else:
            outcome = self.state.failed(seg.key, at, v.reason or "output_unavailable")
        if seg.kind == "test":
            self._end_test(seg.subject_id, v)
            return
        await self._segment_proof(seg, outcome)
        if seg.kind == "alert":
            alert = self.alerts.pop(seg.subject_id, None)
            if alert is not None:
                finish(alert, outcome, v.reason)

    def _stop(self, stop: Stop, at: datetime) -> _Segment | None:
        seg = self.current
        self.current = None
        if seg is not None and seg.key == stop.key:
            if stop.outcome == "cancelled":
                self.d.output.stop(seg.pb)
            else:
                self.d.output.preempt(seg.pb)
        else:
            seg = None
        if self.live is not None and stop.key.startswith("live:"):
            self.live.halt(stop.key.split(":", 1)[1], stop.outcome)
        self.state.stopped(stop, at)
        return seg

    async def _start(
        self, start: StartOccurrence | StartSource, at: datetime, at_wall: float | None
    ) -> None:
        if self.live is not None:
            await self.live.wait_halted()  # VLC off the device before the engine sounds
        out = self.d.output
        if isinstance(start, StartSource):
            if start.kind == "live" and self.live is not None and self.live.begin(start.id):
                self.state.started(start.key, at)
                return
            alert = self.alerts.get(start.id) if start.kind == "alert" else None
            test = self.tests.get(start.id) if start.kind == "test" else None
            if alert is not None:
                voice = out.play(
                    alert.programme, at_wall=at_wall, volume=alert.args.volume, use_master=False
                )
                alert.segments += 1
                seg = _Segment(start.key, "alert", start.id, voice, alert.shas, alert.args.volume)
            elif test is not None:
                voice = out.play(test.media, at_wall=at_wall, volume=TEST_VOLUME, use_master=False)
                seg = _Segment(start.key, "test", start.id, voice, (), TEST_VOLUME)
            else:
                self.state.failed(start.key, at, "not_supported")
                return
        else:
            item = next(i for i in self.items if i.id == start.item_id)
            shas = _shas(item)
            prepared = self._prepared.get(_prep_key(item))
            if prepared is None:
                log.info("%s: media not prepared ahead; decoding now", start.key)
                prepared = await self._prepare_item(item)
            if prepared is None:
                self.state.failed(start.key, at, "media_missing")
                await self._proof_failed(start, item, "media_missing")
                return
            offset_s = start.offset_s
            if at_wall is None and start.resume == "join" and start.resumed:
                # "As soon as possible" reaches the DAC one output latency (and a loop
                # wake-up) after the offset was computed, so the programme would land
                # that much behind the clock. Aim a little ahead instead and advance the
                # offset by exactly as much: the rejoin is then on the clock's position.
                at_wall = self.d.wall() + JOIN_LEAD_S
                offset_s += max(0.0, at_wall - at.timestamp())
            voice = out.play(
                prepared,
                at_wall=at_wall,
                offset_s=offset_s,
                volume=item.volume,
                use_master=not is_emergency(item.priority),
            )
            seg = _Segment(
                start.key,
                self._item_kind(item.kind),
                item.id,
                voice,
                shas,
                item.volume,
                start.scheduled_at,
            )
        log.info("start %s at_wall=%s (planned %s)", start.key, at_wall, at.timestamp())
        if voice.outcome == "failed":
            self.state.failed(start.key, at, voice.reason or "output_unavailable")
            if seg.kind == "test":
                self._end_test(seg.subject_id, voice)
                return
            await self._segment_proof(seg, "failed")
            if isinstance(start, StartSource) and start.id in self.alerts:
                finish(self.alerts.pop(start.id), "failed", voice.reason)
            return
        self.state.started(start.key, at)
        self.current = seg
        voice.done.add_done_callback(lambda _f: self._wake.set())

    # ---- proofs ------------------------------------------------------------------

    def _end_test(self, test_id: str, pb: Playback) -> None:
        test = self.tests.pop(test_id, None)
        if test is not None and not test.result.done():
            test.result.set_result(pb)

    def _pid(self, base: str) -> str:
        """Proof id on this output: the speaker's unprefixed (as before boards), others
        prefixed with the output's name so a speaker and a board never share an id."""
        name = self.d.output.name
        return base if name == "speaker" else f"{name}/{base}"

    def _item_kind(self, kind: str | None) -> ProofKind:
        """A schedule item's proof kind on this output (`audio` or `slides`)."""
        if kind in ("audio", "slides", "alert", "live"):
            return kind  # type: ignore[return-value]  # narrowed by the test above
        return "slides" if "slides" in self.d.output.kinds else "audio"

    async def _segment_proof(self, seg: _Segment, outcome: str) -> None:
        if seg.kind == "test":
            return  # a test's result is its ack, not a proof
        v = seg.pb
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT_S):
                await asyncio.shield(v.done)
        started = v.first_wall
        heard = None
        if self.d.heard is not None and started is not None and v.ended_wall is not None:
            heard = await self.d.heard(started, v.ended_wall)
        await self.d.proof(
            segment_proof(
                proof_id=self._pid(proof_id(seg.key, started)),
                kind=seg.kind,
                subject_id=seg.subject_id,
                tz=self.d.tz,
                outcome=outcome,
                media_sha256=seg.shas,
                scheduled_at=seg.scheduled_at,
                started_wall=started,
                ended_wall=v.ended_wall,
                played_ms=v.played_ms,
                reason=v.reason if outcome == "failed" else None,
                volume=seg.volume,
                level_dbfs=v.level_dbfs,
                heard_dbfs=heard,
                extra=v.extra,
            )
        )

    async def _proof_failed(self, start: StartOccurrence, item: ScheduleItem, reason: str) -> None:
        await self.d.proof(
            segment_proof(
                proof_id=self._pid(f"{start.key}#failed"),
                kind=self._item_kind(item.kind),
                subject_id=item.id,
                tz=self.d.tz,
                outcome="failed",
                media_sha256=_shas(item),
                scheduled_at=start.scheduled_at,
                reason=reason,
                volume=item.volume,
            )
        )

    async def _unplayed_alert_proof(self, alert: ActiveAlert) -> None:
        await self.d.proof(
            segment_proof(
                proof_id=self._pid(proof_id(alert.key, alert.since.timestamp(), tag="unplayed")),
                kind="alert",
                subject_id=alert.args.alert_id,
                tz=self.d.tz,
                outcome="cancelled",
                media_sha256=alert.shas,
                reason=alert.end_reason,
                volume=alert.args.volume,
            )
        )

    # ---- preparing media ahead of time -------------------------------------------

    def _prepare_soon(self) -> None:
        if self._prep_task is not None and not self._prep_task.done():
            self._prep_task.cancel()
        self._prep_task = asyncio.get_running_loop().create_task(self._prepare_upcoming())

    def _upcoming_unprepared(self) -> list[ScheduleItem]:
        """Items with an occurrence within PREPARE_AHEAD whose media is not prepared."""
        now = datetime.fromtimestamp(self.d.wall(), UTC)
        out = []
        for item in self.items:
            if _prep_key(item) in self._prepared:
                continue
            occ = next_occurrence(item, self.d.tz, now - timedelta(seconds=item.window_s))
            if occ is not None and occ.at - now <= PREPARE_AHEAD:
                out.append(item)
        return out

    def media_arrived(self) -> None:
        """Media came into the cache: prepare what it lets sound soon now, rather than
        at the next PREPARE_RETRY_S look (which stays the fallback)."""
        if self._prep_task is not None and not self._prep_task.done():
            self._prep_again = True
        elif self._upcoming_unprepared():
            self._prepare_soon()

    def _maybe_prepare(self) -> None:
        """Called while the loop sleeps: an item entered the look-ahead, or its media
        arrived in the cache since the last try; prepare it before its start."""
        if self._prep_task is not None and not self._prep_task.done():
            return
        if self.d.mono() - self._prep_tried < PREPARE_RETRY_S:
            return
        self._prep_tried = self.d.mono()
        if self._upcoming_unprepared():
            self._prepare_soon()

    async def _prepare_upcoming(self) -> None:
        """Decode the media of items sounding soon, so a start is never late for decoding."""
        self._prep_tried = self.d.mono()
        new = False
        again = True
        while again:
            self._prep_again = False
            for item in self._upcoming_unprepared():
                new = await self._prepare_item(item) is not None or new
            again = self._prep_again
        if new:
            self.wake()  # durations may now be known

    async def _prepare_item(self, item: ScheduleItem) -> Media | None:
        shas = _shas(item)
        if not shas and not item.slides:
            return None
        key = _prep_key(item)
        if key in self._prepared:
            return self._prepared[key]
        paths: list[Path] = []
        for sha in shas:
            p = await self.d.media_path(sha)
            if p is None:
                return None
            paths.append(p)
        try:
            prepared = await self.d.output.prepare(item, paths)
        except Exception as e:  # a bad file fails that item, never the loop
            log.error("cannot decode media of %s: %s", item.id, e)
            return None
        self._prepared[key] = prepared
        if self.d.derived_written is not None:
            await asyncio.to_thread(self.d.derived_written)
        return prepared


def _prep_key(item: ScheduleItem) -> tuple[str, ...]:
    """What prepared media depend on: the media (shared by items naming the same
    files) and, for slides, their text and style."""
    return (*_shas(item), repr(item.slides) if item.slides else "")


def _shas(item: ScheduleItem) -> tuple[str, ...]:
    return tuple(m.sha256 for m in item_media(item))


def _stop_outcome(stop: Stop | None) -> str:
    return "cancelled" if stop is None else stop.outcome
