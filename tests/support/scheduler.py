"""A simulated runner for the pure scheduler: executes each Decision at once, the
way the integrator's asyncio runner will, and records what a listener would hear.

Media "plays" for its known duration, measured on a separate monotonic clock so
wall-clock jumps can be simulated as the real runner sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.model import ScheduleItem
from agent.scheduler import (
    ActiveSource,
    Decision,
    PlanInputs,
    PlannerState,
    QuietHoursLike,
    SkipProof,
    StartOccurrence,
    plan,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def at(text: str) -> datetime:
    """`"2026-11-24 05:30"` (or with seconds) as an aware Asia/Ho_Chi_Minh instant."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=HCM)


def item(
    id: str,
    start: str,
    *,
    rrule: str | None = None,
    priority: int = 20,
    window_s: int = 300,
    resume: str = "join",
    until: str | None = None,
) -> ScheduleItem:
    return ScheduleItem(
        id=id,
        kind="audio",
        start=at(start),
        rrule=rrule,
        until=None if until is None else at(until),
        priority=priority,
        window_s=window_s,
        resume=resume,  # type: ignore[arg-type]
    )


@dataclass
class Event:
    what: str  # start | stop | finish | fail | skip
    key: str
    at: datetime
    offset_s: float | None = None
    resumed: bool = False
    outcome: str | None = None
    reason: str | None = None


@dataclass
class Sim:
    items: tuple[ScheduleItem, ...]
    durations: dict[str, float] = field(default_factory=dict)
    quiet: QuietHoursLike | None = None
    tz: ZoneInfo = HCM
    state: PlannerState = field(default_factory=PlannerState)
    trusted: bool = True
    untrusted_since: datetime | None = None
    active: list[ActiveSource] = field(default_factory=list)
    source_durations: dict[str, float] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    proofs: list[SkipProof] = field(default_factory=list)
    # Monotonic instant (seconds) at which what plays ends, if known.
    mono: float = 0.0
    ends_at_mono: float | None = None
    last_decision: Decision | None = None

    # ---- driving --------------------------------------------------------------

    def inputs(self) -> PlanInputs:
        return PlanInputs(
            items=self.items,
            tz=self.tz,
            quiet=self.quiet,
            clock_trusted=self.trusted,
            active=tuple(self.active),
            durations=self.durations,
            untrusted_since=self.untrusted_since,
        )

    def step(self, now: datetime) -> Decision:
        """Plan at `now` and carry the decision out at once."""
        d = plan(now, self.inputs(), self.state)
        self.last_decision = d
        if d.stop is not None:
            outcome = self.state.stopped(d.stop, now)
            self.events.append(
                Event("stop", d.stop.key, now, outcome=outcome, reason=d.stop.reason)
            )
            self.ends_at_mono = None
        if d.start is not None:
            s = d.start
            self.state.started(s.key, now)
            if isinstance(s, StartOccurrence):
                self.events.append(Event("start", s.key, now, s.offset_s, s.resumed))
                dur = self.durations.get(s.item_id)
                self.ends_at_mono = None if dur is None else self.mono + dur - s.offset_s
            else:
                self.events.append(Event("start", s.key, now, 0.0))
                dur = self.source_durations.get(s.id)
                self.ends_at_mono = None if dur is None else self.mono + dur
        for p in d.proofs:
            self.events.append(Event("skip", p.key, now, reason=p.reason, outcome="skipped"))
        self.proofs.extend(d.proofs)
        return d

    def run(self, start: datetime, end: datetime) -> None:
        """Advance wall and monotonic time together (no jumps) from `start` to `end`,
        planning at every wake-up and every media end, like the real runner."""
        now = start
        self.step(now)
        while now < end:
            nxt = end
            d = self.last_decision
            if d is not None and d.wake_at is not None and now < d.wake_at < nxt:
                nxt = d.wake_at
            if self.ends_at_mono is not None:
                media_end = now + timedelta(seconds=self.ends_at_mono - self.mono)
                if now <= media_end < nxt:
                    nxt = media_end
            self.mono += (nxt - now).total_seconds()
            now = nxt
            self._finish_due(now)
            self.step(now)

    def jump(self, now: datetime, delta_s: float) -> Decision:
        """The wall clock steps by `delta_s` (monotonic does not): tell the state, re-plan."""
        self.state.clock_jumped(delta_s)
        return self.step(now)

    def _finish_due(self, now: datetime) -> None:
        p = self.state.playing
        if p is None or self.ends_at_mono is None or self.mono < self.ends_at_mono:
            return
        outcome = self.state.finished(p.key, now)
        self.events.append(Event("finish", p.key, now, outcome=outcome))
        self.ends_at_mono = None
        if p.kind != "occurrence":
            self.active = [a for a in self.active if a.key != p.key]

    # ---- alerts ---------------------------------------------------------------

    def alert(
        self, alert_id: str, since: datetime, *, priority: int = 100, kind: str = "alert"
    ) -> None:
        self.active.append(ActiveSource(kind, alert_id, priority, since))  # type: ignore[arg-type]

    def alert_stop(self, key: str, now: datetime) -> None:
        self.active = [a for a in self.active if a.key != key]
        p = self.state.playing
        if p is not None and p.key == key:
            self.events.append(Event("finish", key, now, outcome=self.state.finished(key, now)))
            self.ends_at_mono = None

    # ---- what a listener heard ------------------------------------------------

    def starts(self, key: str | None = None) -> list[Event]:
        return [e for e in self.events if e.what == "start" and (key is None or e.key == key)]

    def of(self, what: str) -> list[Event]:
        return [e for e in self.events if e.what == what]
