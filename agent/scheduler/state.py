"""The planner's durable state and the events that change it.

Persisted (JSON via `to_json`/`from_json`, stored by the integrator in state.db):
- the *ledger*: every occurrence key with a final outcome and when it was decided,
  kept `RETENTION` (3 days) then pruned. A key in the ledger never plays again,
  whatever the wall clock later says (backward jump, restart).
- *tracks*: occurrences that have sounded and are not final yet: the one playing
  and the pre-empted ones that may resume. A track's `anchor` is the wall instant
  at which its media position 0 lies, so a `join` resumes at `now - anchor`.
- what is *playing* (occurrence, alert or live), the *high-water mark* (latest
  trusted wall time planned at, so occurrences missed while off or across a
  forward jump are found and skipped exactly once) and whether an untrusted-clock
  spell was seen since.

All methods take the instant they happen at; nothing here reads a clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from agent.model import ResumeMode
from agent.scheduler.decision import Outcome, Start, StartOccurrence, StartSource, Stop

RETENTION = timedelta(days=3)
_FORMAT_VERSION = 1
_OUTCOMES = ("completed", "preempted", "resumed", "skipped", "failed", "cancelled")
_RESUMES = ("join", "restart", "drop")

PlayingKind = Literal["occurrence", "alert", "live", "test"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class LedgerEntry:
    outcome: Outcome
    reason: str | None
    decided_at: datetime


@dataclass(frozen=True)
class Track:
    """An occurrence that has sounded and is not final (playing, or pre-empted)."""

    key: str
    item_id: str
    scheduled_at: datetime
    window_end: datetime
    priority: int
    resume: ResumeMode
    anchor: datetime  # wall instant of media position 0 (for join)
    resumed: bool  # the current / last segment continues an earlier one
    preempted_at: datetime | None = None  # None while playing
    preempt_reason: str | None = None


@dataclass(frozen=True)
class Playing:
    key: str
    kind: PlayingKind
    priority: int
    since: datetime


@dataclass(frozen=True)
class Interruption:
    """What was playing when the agent stopped (crash, power cut, restart).

    The runner writes a proof for that segment: outcome `preempted`, reason
    `agent_restart`, `started_at` = `since`, `ended_at` unknown (null).
    """

    key: str
    kind: PlayingKind
    since: datetime
    final: bool  # the occurrence will not resume (resume=drop), or not an occurrence


@dataclass
class PlannerState:
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)
    tracks: dict[str, Track] = field(default_factory=dict)
    playing: Playing | None = None
    high_water: datetime | None = None
    untrusted_spell: bool = False
    # Forward jumps reported but not yet placed on the timeline (placed by the next
    # trusted plan as the span (now - jump, now]), and the placed spans: wall time
    # the device never lived through. An emergency occurrence whose window ended
    # inside such a span gets the span's length back (see planner.py).
    pending_jump_s: float = 0.0
    jumped_spans: list[tuple[datetime, datetime]] = field(default_factory=list)
    # The last start plan() offered; `started(key)` takes its details from here.
    # Not persisted: after a restart the runner plans again before starting anything.
    offered: Start | None = None

    # ---- queries -------------------------------------------------------------

    def decided(self, key: str) -> bool:
        return key in self.ledger

    # ---- events fed back by the runner ----------------------------------------

    def started(self, key: str, at: datetime) -> None:
        """The engine began playing `key` (the start plan() just offered) at `at`."""
        at = _utc(at)
        offer = self.offered
        if offer is None or offer.key != key:
            raise ValueError(f"started({key!r}): plan() did not offer that start")
        if key in self.ledger:
            raise ValueError(f"started({key!r}): already decided as {self.ledger[key].outcome}")
        self.offered = None
        if isinstance(offer, StartSource):
            self.playing = Playing(key, offer.kind, offer.priority, at)
            return
        anchor = at - timedelta(seconds=offer.offset_s)
        self.tracks[key] = Track(
            key=key,
            item_id=offer.item_id,
            scheduled_at=_utc(offer.scheduled_at),
            window_end=_utc(offer.window_end),
            priority=offer.priority,
            resume=offer.resume,
            anchor=anchor,
            resumed=offer.resumed,
        )
        self.playing = Playing(key, "occurrence", offer.priority, at)

    def finished(self, key: str, at: datetime) -> Outcome:
        """`key` played to its end; returns the outcome for its segment's proof."""
        at = _utc(at)
        self._expect_playing(key, "finished")
        self.playing = None
        track = self.tracks.pop(key, None)
        if track is None:
            return "completed"
        outcome: Outcome = "resumed" if track.resumed else "completed"
        self.ledger[key] = LedgerEntry(outcome, None, at)
        return outcome

    def failed(self, key: str, at: datetime, reason: str) -> Outcome:
        """The engine could not play `key` (media_missing, output_unavailable, ...): final."""
        at = _utc(at)
        self._expect_playing(key, "failed", allow_offered=True)
        offered_occurrence = isinstance(self.offered, StartOccurrence) and self.offered.key == key
        if self.playing is not None and self.playing.key == key:
            self.playing = None
        if self.offered is not None and self.offered.key == key:
            self.offered = None
        if self.tracks.pop(key, None) is not None or offered_occurrence:
            self.ledger[key] = LedgerEntry("failed", reason, at)
        return "failed"

    def preempted(self, key: str, at: datetime, reason: str | None = None) -> Outcome:
        """`key` was stopped for something else (or quiet hours); it may resume later."""
        at = _utc(at)
        self._expect_playing(key, "preempted")
        self.playing = None
        track = self.tracks.get(key)
        if track is None:
            return "preempted"
        if track.resume == "drop":
            del self.tracks[key]
            self.ledger[key] = LedgerEntry("preempted", reason, at)
        else:
            self.tracks[key] = replace(track, preempted_at=at, preempt_reason=reason)
        return "preempted"

    def cancelled(self, key: str, at: datetime) -> Outcome:
        """`key` was stopped because its item was removed or its alert/live ended: final."""
        at = _utc(at)
        self._expect_playing(key, "cancelled")
        self.playing = None
        if self.tracks.pop(key, None) is not None:
            self.ledger[key] = LedgerEntry("cancelled", None, at)
        return "cancelled"

    def stopped(self, stop: Stop, at: datetime) -> Outcome:
        """Apply a `Decision.stop` the runner has just carried out."""
        if stop.outcome == "cancelled":
            return self.cancelled(stop.key, at)
        return self.preempted(stop.key, at, stop.reason)

    def clock_jumped(self, delta_s: float) -> None:
        """The wall clock stepped by `delta_s` (monotonic clock says so): keep elapsed
        times right by moving every wall instant that measures a duration."""
        d = timedelta(seconds=delta_s)
        for key, t in self.tracks.items():
            self.tracks[key] = replace(
                t,
                anchor=t.anchor + d,
                preempted_at=None if t.preempted_at is None else t.preempted_at + d,
            )
        if self.playing is not None:
            self.playing = replace(self.playing, since=self.playing.since + d)
        # A jump at boot while untrusted is a clock being set, not time skipped over:
        # the untrusted-clock policy covers it.
        if delta_s > 0 and not self.untrusted_spell:
            self.pending_jump_s += delta_s

    def after_restart(self) -> Interruption | None:
        """Call once when state is loaded at agent start: nothing is playing any more.

        An occurrence that was playing counts as pre-empted by the restart and
        resumes per its `resume` (join: at the point the clock says; restart: from
        the top; drop: never, final `preempted` with reason `agent_restart`).
        """
        self.offered = None
        p = self.playing
        if p is None:
            return None
        self.playing = None
        track = self.tracks.get(p.key)
        if p.kind != "occurrence" or track is None:
            return Interruption(p.key, p.kind, p.since, final=True)
        if track.resume == "drop":
            del self.tracks[p.key]
            self.ledger[p.key] = LedgerEntry("preempted", "agent_restart", p.since)
            return Interruption(p.key, p.kind, p.since, final=True)
        self.tracks[p.key] = replace(track, preempted_at=p.since, preempt_reason="agent_restart")
        return Interruption(p.key, p.kind, p.since, final=False)

    def prune(self, now: datetime) -> None:
        """Forget ledger entries decided more than RETENTION before `now`."""
        cutoff = now - RETENTION
        for key in [k for k, e in self.ledger.items() if e.decided_at < cutoff]:
            del self.ledger[key]
        self.jumped_spans = [(a, b) for a, b in self.jumped_spans if b >= cutoff]

    def _expect_playing(self, key: str, event: str, allow_offered: bool = False) -> None:
        if self.playing is not None and self.playing.key == key:
            return
        if allow_offered and self.offered is not None and self.offered.key == key:
            return
        now_playing = None if self.playing is None else self.playing.key
        raise ValueError(f"{event}({key!r}): that is not playing (playing: {now_playing!r})")

    # ---- durable form ----------------------------------------------------------

    def to_json(self) -> str:
        """Serialise the durable part (not `offered`) as compact JSON."""
        doc: dict[str, Any] = {
            "v": _FORMAT_VERSION,
            "high_water": _ts(self.high_water),
            "untrusted_spell": self.untrusted_spell,
            "pending_jump_s": self.pending_jump_s,
            "jumped_spans": [[a.isoformat(), b.isoformat()] for a, b in self.jumped_spans],
            "ledger": {
                k: [e.outcome, e.reason, e.decided_at.isoformat()] for k, e in self.ledger.items()
            },
            "tracks": [
                {
                    "key": t.key,
                    "item_id": t.item_id,
                    "scheduled_at": t.scheduled_at.isoformat(),
                    "window_end": t.window_end.isoformat(),
                    "priority": t.priority,
                    "resume": t.resume,
                    "anchor": t.anchor.isoformat(),
                    "resumed": t.resumed,
                    "preempted_at": _ts(t.preempted_at),
                    "preempt_reason": t.preempt_reason,
                }
                for t in self.tracks.values()
            ],
            "playing": None
            if self.playing is None
            else {
                "key": self.playing.key,
                "kind": self.playing.kind,
                "priority": self.playing.priority,
                "since": self.playing.since.isoformat(),
            },
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PlannerState:
        """Parse `to_json` output; ValueError names the first thing that is wrong."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"planner state is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError("planner state: not a JSON object")
        if doc.get("v") != _FORMAT_VERSION:
            raise ValueError(f"planner state: unsupported format version {doc.get('v')!r}")
        try:
            ledger_doc = _typed(doc, "ledger", dict)
            ledger: dict[str, LedgerEntry] = {}
            for k, v in ledger_doc.items():
                if not (isinstance(v, list) and len(v) == 3 and v[0] in _OUTCOMES):
                    raise ValueError(f"ledger[{k!r}]: expected [outcome, reason, decided_at]")
                if v[1] is not None and not isinstance(v[1], str):
                    raise ValueError(f"ledger[{k!r}]: reason must be a string or null")
                ledger[k] = LedgerEntry(cast(Outcome, v[0]), v[1], _dt(v[2], f"ledger[{k!r}]"))
            tracks: dict[str, Track] = {}
            for i, t in enumerate(_typed(doc, "tracks", list)):
                where = f"tracks[{i}]"
                if not isinstance(t, dict):
                    raise ValueError(f"{where}: not an object")
                resume = _typed(t, "resume", str, where)
                if resume not in _RESUMES:
                    raise ValueError(f"{where}.resume: {resume!r} is not join|restart|drop")
                preempted_at = t.get("preempted_at")
                track = Track(
                    key=_typed(t, "key", str, where),
                    item_id=_typed(t, "item_id", str, where),
                    scheduled_at=_dt(t.get("scheduled_at"), f"{where}.scheduled_at"),
                    window_end=_dt(t.get("window_end"), f"{where}.window_end"),
                    priority=_typed(t, "priority", int, where),
                    resume=cast(ResumeMode, resume),
                    anchor=_dt(t.get("anchor"), f"{where}.anchor"),
                    resumed=_typed(t, "resumed", bool, where),
                    preempted_at=None
                    if preempted_at is None
                    else _dt(preempted_at, f"{where}.preempted_at"),
                    preempt_reason=t.get("preempt_reason"),
                )
                tracks[track.key] = track
            playing: Playing | None = None
            p = doc.get("playing")
            if p is not None:
                if not isinstance(p, dict) or p.get("kind") not in (
                    "occurrence",
                    "alert",
                    "live",
                    "test",
                ):
                    raise ValueError(
                        "playing: expected an object with kind occurrence|alert|live|test"
                    )
                playing = Playing(
                    key=_typed(p, "key", str, "playing"),
                    kind=cast(PlayingKind, p["kind"]),
                    priority=_typed(p, "priority", int, "playing"),
                    since=_dt(p.get("since"), "playing.since"),
                )
            hw = doc.get("high_water")
            spans: list[tuple[datetime, datetime]] = []
            for i, pair in enumerate(_typed(doc, "jumped_spans", list)):
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ValueError(f"planner state jumped_spans[{i}]: expected [from, to]")
                spans.append(
                    (_dt(pair[0], f"jumped_spans[{i}]"), _dt(pair[1], f"jumped_spans[{i}]"))
                )
            return cls(
                ledger=ledger,
                tracks=tracks,
                playing=playing,
                high_water=None if hw is None else _dt(hw, "high_water"),
                untrusted_spell=_typed(doc, "untrusted_spell", bool),
                pending_jump_s=_seconds(doc.get("pending_jump_s"), "pending_jump_s"),
                jumped_spans=spans,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"planner state: malformed ({exc!r})") from None


def _utc(dt: datetime) -> datetime:
    # Stored instants are UTC: aware arithmetic within one ZoneInfo is wall-clock
    # arithmetic, wrong by an hour across a DST change.
    if dt.tzinfo is None:
        raise ValueError("planner state: instants must be timezone-aware")
    return dt.astimezone(UTC)


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"planner state {where}: expected seconds >= 0, got {value!r}")
    return float(value)


def _ts(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _dt(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"planner state {where}: expected an ISO timestamp")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"planner state {where}: {value!r} is not an ISO timestamp") from None
    if dt.tzinfo is None:
        raise ValueError(f"planner state {where}: {value!r} has no UTC offset")
    return dt.astimezone(UTC)


def _typed(doc: dict[str, Any], name: str, typ: type[_T], where: str = "") -> _T:
    value = doc.get(name)
    # bool is an int subclass: a priority of `true` must not pass as 1.
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        label = f"{where}.{name}" if where else name
        raise ValueError(f"planner state {label}: expected {typ.__name__}, got {value!r}")
    return value
