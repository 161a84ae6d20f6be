"""The scheduler's decision core: given the time, the schedule and what is going on,
what should be playing now? Pure: it never reads a clock and does no I/O.

A small runner (asyncio, written by the integrator) loops:

1. `decision = plan(now_wall, inputs, state)`;
2. carries it out on the engine: `decision.stop` first (then
   `state.stopped(decision.stop, now)`), then `decision.start` (then
   `state.started(key, now)`, or `state.failed(key, now, reason)`), and writes a
   proof for each of `decision.proofs` to the outbox;
3. persists `state.to_json()` (after the proofs are in the outbox: a crash in
   between re-sends a proof with the same id, which §6.4 allows, instead of losing it);
4. sleeps until `decision.wake_at` (measured with the monotonic clock) or the next
   event: engine finished/failed (`state.finished` / `state.failed`), a command
   (schedule, alert, live), clock trust change, or a wall-clock jump (first
   `state.clock_jumped(delta_s)`), and goes back to 1.

Rules (PROTOCOL §5.2, §6.4):

* Priority: higher pre-empts lower at once. Equal priority: first come, first
  played; what plays keeps playing, and waiting candidates are ordered by arrival
  (an occurrence's scheduled instant; an alert's or live session's acceptance).
  A waiting occurrence still waits within its window; when the window ends it is
  `skipped` / `window_passed`.
* Resume after pre-emption: `join` rejoins at the point it would have reached
  (`now - anchor`, the anchor being where its media position 0 lies on the wall
  clock); `restart` plays from the top; `drop` never again (final `preempted`).
  Never past its window end: `restart` must begin again before `scheduled +
  window_s`; `join` may rejoin while its media has not run out by the clock when
  the media duration is known (the programme's own end), else only before
  `scheduled + window_s`. A `join` with nothing left, or a resume that cannot
  happen, ends the occurrence as `preempted` (the proof of its last segment said
  so already; no further proof).
* Quiet hours silence normal and priority items, never emergencies (>= 90): an
  occurrence whose sound from now (its remaining media, if its duration is known)
  would fall in quiet hours is `skipped` / `quiet_hours` at once if it never
  sounded, or ends `preempted` if it had; one playing when quiet hours begin is
  stopped (`preempted`, reason `quiet_hours`). Alerts always sound; live sessions
  are not schedule items and are not silenced (a person started them, now).
* Clock jumps: the ledger holds every decided occurrence key, so a backward jump
  never replays one. The high-water mark (latest trusted time planned at) makes
  the first plan after a forward jump, power cut or days offline find every
  occurrence whose window ended meanwhile and skip it exactly once
  (`window_passed`), back to at most RETENTION (3 days). An emergency (>= 90)
  is never lost to a forward jump: if its window ended inside wall time the
  jump skipped over (reported by `state.clock_jumped` while the clock was
  trusted), it gets that time back and plays late. Durations (join offsets) stay
  right across jumps because the runner calls `state.clock_jumped` *before* the
  next plan().

Untrusted wall clock (kernel not synchronised and no RTC): scheduled occurrences
are *held*, neither started, resumed nor skipped, because a stale clock (a Pi
boots with fake-hwclock's last saved time) would sound programmes at the wrong
hour, at night, or replay yesterday's. What plays already continues. Alerts and
live sessions play at once: they need no clock. When the clock becomes trusted,
occurrences whose window ended meanwhile are skipped with reason
`clock_untrusted` (or `window_passed` for those that ended before
`inputs.untrusted_since`, the trusted instant the spell began, when the runner
knows it: the device was off then, not confused). A device that must play
offline needs an RTC, or `clock.trust = "always"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.model import ScheduleItem, is_emergency
from agent.scheduler.decision import (
    ActiveSource,
    Decision,
    SkipProof,
    SkipReason,
    Start,
    StartOccurrence,
    StartSource,
    Stop,
)
from agent.scheduler.occurrences import Occurrence, next_occurrence, occurrences
from agent.scheduler.quiet import QuietHoursLike, in_quiet, next_quiet_start, sounds_in_quiet
from agent.scheduler.state import RETENTION, LedgerEntry, PlannerState, Playing, Track

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class PlanInputs:
    """Everything plan() needs that is not its own durable state.

    `active`: running alerts and live sessions. `durations`: media duration in
    seconds per item id, when known (from the cache). `untrusted_since`: see the
    module docstring; None when unknown.
    """

    items: tuple[ScheduleItem, ...]
    tz: ZoneInfo
    quiet: QuietHoursLike | None = None
    clock_trusted: bool = True
    active: tuple[ActiveSource, ...] = ()
    durations: Mapping[str, float] = field(default_factory=dict)
    untrusted_since: datetime | None = None


@dataclass(frozen=True)
class _Candidate:
    priority: int
    arrival: datetime
    key: str
    start: Start
    deadline: datetime | None  # when it stops being a candidate (occurrences)


def resume_offset(track: Track, now: datetime, duration_s: float | None) -> float | None:
    """Where a pre-empted occurrence would resume at `now` (seconds into its media),
    or None if it may not resume any more (see the module docstring)."""
    if track.resume == "restart":
        return 0.0 if now < track.window_end else None
    if track.resume == "join":
        offset = max(0.0, (now - track.anchor).total_seconds())
        if duration_s is not None:
            return offset if offset < duration_s else None
        return offset if now < track.window_end else None
    return None


def _resume_deadline(track: Track, duration_s: float | None) -> datetime:
    if track.resume == "join" and duration_s is not None:
        return track.anchor + timedelta(seconds=duration_s)
    return track.window_end


def _due(
    item: ScheduleItem,
    tz: ZoneInfo,
    now: datetime,
    high_water: datetime | None,
    spans: list[tuple[datetime, datetime]],
) -> list[Occurrence]:
    """Occurrences begun by `now` that may still need a decision.

    From the high-water mark (or now, on the very first plan: history from before
    the device knew is not reported) back by the item's window, at most RETENTION;
    further back for an emergency whose window a forward jump may have swallowed.
    """
    window = min(timedelta(seconds=item.window_s), RETENTION)
    base = now if high_water is None else min(high_water, now)
    for start, _ in spans:
        base = min(base, start)
    lo = max(base - window, now - RETENTION)
    return occurrences(item, tz, lo, now + _TICK)


def _emergency_window_end(occ: Occurrence, spans: list[tuple[datetime, datetime]]) -> datetime:
    """An emergency occurrence's window, given back the wall time a forward jump skipped.

    The device never lived through a jumped-over span, so an emergency whose window
    ended inside one was never missed by a listener's clock: it still begins, late,
    within a window as long as the one it was promised. (Normal and priority items
    are skipped `window_passed` instead, as §5.2 says.) `spans` is empty for them.
    """
    end = occ.window_end
    for start, stop in spans:
        if start < end <= stop:
            end = end + (stop - start)
    return end


def plan(now: datetime, inputs: PlanInputs, state: PlannerState) -> Decision:
    """Decide what should sound at wall instant `now`.

    Records its own decisions without sound (skips, final pre-emptions) in `state`
    and returns the proofs to write; the runner feeds back what it then does.
    """
    if now.tzinfo is None:
        raise ValueError("plan(): now must be timezone-aware")
    # All arithmetic in UTC: within one ZoneInfo, aware `-`/`+` are wall-clock arithmetic.
    now = now.astimezone(UTC)
    tz, quiet, trusted = inputs.tz, inputs.quiet, inputs.clock_trusted
    items = {i.id: i for i in inputs.items}
    active = {s.key: s for s in inputs.active}
    durations = inputs.durations
    proofs: list[SkipProof] = []
    candidates: list[_Candidate] = []

    # 1. Is what plays still wanted?
    stop: Stop | None = None
    playing = state.playing
    if playing is not None:
        if playing.kind == "occurrence":
            track = state.tracks.get(playing.key)
            if track is None or track.item_id not in items:
                stop = Stop(playing.key, "cancelled")
            elif trusted and not is_emergency(playing.priority) and in_quiet(now, tz, quiet):
                stop = Stop(playing.key, "preempted", "quiet_hours")
        elif playing.key not in active:
            stop = Stop(playing.key, "cancelled")
    current = None if stop is not None else playing

    if trusted:
        state.prune(now)
        if state.pending_jump_s > 0:
            state.jumped_spans.append((now - timedelta(seconds=state.pending_jump_s), now))
            state.pending_jump_s = 0.0
        # 2. Pre-empted occurrences: resume, or end them.
        for track in list(state.tracks.values()):
            if playing is not None and track.key == playing.key:
                continue
            item = items.get(track.item_id)
            if item is None:
                del state.tracks[track.key]
                state.ledger[track.key] = LedgerEntry("cancelled", None, now)
                continue
            duration = durations.get(item.id)
            offset = resume_offset(track, now, duration)
            remaining = None if duration is None or offset is None else duration - offset
            if offset is not None and (
                is_emergency(track.priority) or not sounds_in_quiet(now, tz, quiet, remaining)
            ):
                start = StartOccurrence(
                    key=track.key,
                    item_id=track.item_id,
                    scheduled_at=track.scheduled_at,
                    priority=track.priority,
                    offset_s=offset,
                    resumed=True,
                    window_end=track.window_end,
                    resume=track.resume,
                )
                deadline = _resume_deadline(track, duration)
                candidates.append(
                    _Candidate(track.priority, track.scheduled_at, track.key, start, deadline)
                )
                continue
            reason = track.preempt_reason if offset is None else "quiet_hours"
            del state.tracks[track.key]
            state.ledger[track.key] = LedgerEntry("preempted", reason, now)

        # 3. Occurrences that are due and never sounded: skip, or candidates.
        for item in inputs.items:
            emergency = is_emergency(item.priority)
            spans = state.jumped_spans if emergency else []
            for occ in _due(item, tz, now, state.high_water, spans):
                if occ.key in state.ledger or occ.key in state.tracks:
                    continue
                skip: SkipReason | None = None
                window_end = _emergency_window_end(occ, spans)
                if now >= window_end:
                    skip = _window_reason(occ, state, inputs)
                elif not emergency and sounds_in_quiet(now, tz, quiet, durations.get(item.id)):
                    skip = "quiet_hours"
                if skip is not None:
                    state.ledger[occ.key] = LedgerEntry("skipped", skip, now)
                    proofs.append(SkipProof(occ.key, item.id, occ.at, skip, now))
                    continue
                start = StartOccurrence(
                    key=occ.key,
                    item_id=item.id,
                    scheduled_at=occ.at,
                    priority=item.priority,
                    offset_s=0.0,
                    resumed=False,
                    # An emergency's window given back after a forward jump holds for
                    # its resumption too (a `restart` after an alert pre-empts it).
                    window_end=window_end,
                    resume=item.resume,
                )
                candidates.append(_Candidate(item.priority, occ.at, occ.key, start, window_end))
        if state.high_water is None or now > state.high_water:
            state.high_water = now
        state.untrusted_spell = False
    else:
        state.untrusted_spell = True

    # 4. Alerts and live sessions: always candidates (they need no clock). A
    # `test.run` is a priority-0 item: it waits out quiet hours (PROTOCOL §3).
    for src in inputs.active:
        if current is not None and src.key == current.key:
            continue
        if src.kind == "test" and trusted and in_quiet(now, tz, quiet):
            continue
        start_src = StartSource(src.key, src.kind, src.id, src.priority)
        candidates.append(_Candidate(src.priority, src.since, src.key, start_src, None))

    # 5. Choose: highest priority, then first come; what plays wins ties.
    candidates.sort(key=lambda c: (-c.priority, c.arrival, c.key))
    best = candidates[0] if candidates else None
    chosen: Start | None = None
    if current is None:
        chosen = best.start if best is not None else None
    elif best is not None and best.priority > current.priority:
        stop = Stop(current.key, "preempted")
        chosen = best.start
    state.offered = chosen

    wake = _wake_at(now, inputs, candidates, chosen, current) if trusted else None
    return Decision(stop=stop, start=chosen, proofs=tuple(proofs), wake_at=wake)


def _window_reason(occ: Occurrence, state: PlannerState, inputs: PlanInputs) -> SkipReason:
    if state.untrusted_spell and (
        inputs.untrusted_since is None or occ.window_end > inputs.untrusted_since
    ):
        return "clock_untrusted"
    return "window_passed"


def _wake_at(
    now: datetime,
    inputs: PlanInputs,
    candidates: list[_Candidate],
    chosen: Start | None,
    current: Playing | None,
) -> datetime | None:
    """The next instant the plan could change with no event in between."""
    times: list[datetime] = []
    for item in inputs.items:
        nxt = next_occurrence(item, inputs.tz, now)
        if nxt is not None:
            times.append(nxt.at)
    chosen_key = None if chosen is None else chosen.key
    # A waiting occurrence must be skipped (or its resume given up) when its time ends.
    times.extend(c.deadline for c in candidates if c.deadline is not None and c.key != chosen_key)
    # Something non-emergency scheduled will sound: quiet hours beginning must cut it.
    if isinstance(chosen, StartOccurrence):
        scheduled_priority: int | None = chosen.priority
    elif chosen is None and current is not None and current.kind == "occurrence":
        scheduled_priority = current.priority
    else:
        scheduled_priority = None
    if (
        inputs.quiet is not None
        and scheduled_priority is not None
        and not is_emergency(scheduled_priority)
    ):
        times.append(next_quiet_start(now, inputs.tz, inputs.quiet))
    future = [t for t in times if t > now]
    return min(future) if future else None
