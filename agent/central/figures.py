"""The effectiveness figures of a report, per device, group or day.

Reads only what the period needs, in a handful of queries, and aggregates in
Python: the same code gives the same figures on SQLite and PostgreSQL, and
percentiles need no database-specific function. Definitions (docs/CENTRAL.md):

- `proofs`: distinct genuine proofs (signature verified, stored once per id),
  dated by `scheduled_at`, else `started_at`, else receipt; outcome columns split them.
- `forged`: proofs kept apart (forged, unknown device, malformed, conflicting id).
- on-time start: `started_at - scheduled_at` of genuine proofs that sounded; the
  median is the statistics median, p95 the nearest-rank 95th percentile.
- online share: heartbeat slots (`heartbeat_s`) with at least one heartbeat,
  over the slots in the period.
- missing: an expected occurrence (agent/central/expected.py) with no genuine
  proof; `offline` when no heartbeat arrived within two heartbeat periods of it,
  else `unreported`.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select

from agent.central import schema
from agent.central.acl import DeviceEntry
from agent.central.command_log import SentCommand
from agent.central.command_log import load as load_commands
from agent.central.expected import audience, expected_occurrences

OUTCOMES = ("completed", "preempted", "resumed", "skipped", "failed", "cancelled")
PLAYED = ("completed", "preempted", "resumed")


def _add(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def _add_all(into: dict[str, int], more: dict[str, int]) -> None:
    for key, n in more.items():
        into[key] = into.get(key, 0) + n


@dataclass(slots=True)
class Tally:
    """Figures of one row (a device, a group or a day). Plain dicts, not Counters:
    a month of a province is 150,000 of these, and Counter's constructor is slow."""

    devices: set[str] = field(default_factory=set)
    outcomes: dict[str, int] = field(default_factory=dict)
    forged: int = 0
    played_ms: int = 0
    offsets_ms: list[int] = field(default_factory=list)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    fail_reasons: dict[str, int] = field(default_factory=dict)
    hb_slots: int = 0
    slot_total: int = 0
    expected: int = 0
    missing_offline: int = 0
    missing_unreported: int = 0

    @property
    def proofs(self) -> int:
        return sum(self.outcomes.values())

    @property
    def online_share(self) -> float | None:
        return None if not self.slot_total else self.hb_slots / self.slot_total

    def on_time(self) -> tuple[float | None, float | None]:
        if not self.offsets_ms:
            return None, None
        ordered = sorted(self.offsets_ms)
        p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        return statistics.median(ordered) / 1000, p95 / 1000


@dataclass(frozen=True)
class NotPlayed:
    """One line of the "what did not play" list."""

    device: str
    subject: str
    at_ms: int
    status: str  # skipped | failed | cancelled | offline | unreported
    reason: str | None


@dataclass(frozen=True)
class AlertReach:
    alert_id: str
    sent_ms: int
    targeted: int
    acked: int
    played: int
    first_sound_s: float | None
    median_sound_s: float | None


@dataclass
class Report:
    by: str
    start: date
    end: date  # last day included
    tz: ZoneInfo
    rows: dict[str, Tally]
    not_played: list[NotPlayed]
    alerts: list[AlertReach]
    per_day: dict[date, Tally]  # for the charts, whatever `by` is
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # device -> its groups


def _bounds(start: date, end: date, tz: ZoneInfo) -> tuple[int, int]:
    lo = datetime.combine(start, time(), tz)
    hi = datetime.combine(end + timedelta(days=1), time(), tz)
    return int(lo.timestamp() * 1000), int(hi.timestamp() * 1000)


_QUARTER_MS = 900_000  # every zone's UTC offset is a whole number of quarter hours


def _day(ms: int, tz: ZoneInfo, cache: dict[int, date] | None = None) -> date:
    if cache is None:
        return datetime.fromtimestamp(ms / 1000, tz).date()
    quarter = ms // _QUARTER_MS
    day = cache.get(quarter)
    if day is None:
        day = cache[quarter] = datetime.fromtimestamp(quarter * 900, tz).date()
    return day


def compute(engine: Engine, devices: Sequence[DeviceEntry], start: date, end: date,
            tz: ZoneInfo, by: str, heartbeat_s: int) -> Report:
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    lo, hi = _bounds(start, end, tz)
    groups = {d.id: d.groups for d in devices}
    atoms: dict[tuple[str, date], Tally] = defaultdict(Tally)
    not_played: list[NotPlayed] = []
    played_keys: set[tuple[str, str, int]] = set()
    p, s, dd = schema.proofs.c, schema.suspect_proofs.c, schema.device_days.c
    days_of: dict[int, date] = {}
    with engine.connect() as conn:
        for device, subject, outcome, reason, at_ms, sched, started, played in conn.execute(
            select(p.device, p.subject_id, p.outcome, p.reason, p.at_ms, p.scheduled_ms,
                   p.started_ms, p.played_ms).where(p.at_ms >= lo, p.at_ms < hi)
        ).all():
            t = atoms[(device, _day(at_ms, tz, days_of))]
            _add(t.outcomes, outcome)
            t.played_ms += played
            if sched is not None:
                played_keys.add((device, subject, sched))
                if started is not None:
                    t.offsets_ms.append(started - sched)
            if outcome in ("skipped", "failed", "cancelled"):
                if outcome != "cancelled":
                    _add(t.skip_reasons if outcome == "skipped" else t.fail_reasons,
                         reason or "?")
                not_played.append(NotPlayed(device, subject, at_ms, outcome, reason))
        for device, received in conn.execute(
            select(s.device, s.received_ms).where(s.received_ms >= lo, s.received_ms < hi)
        ):
            atoms[(device, _day(received, tz))].forged += 1
        pdays = schema.proof_days.c
        # Days whose proofs were rolled up by retention (their raw rows are gone, so
        # nothing is counted twice): counts and played time, no offsets or reasons.
        for device, day, outcome, count, played in conn.execute(
            select(pdays.device, pdays.day, pdays.outcome, pdays.count, pdays.played_ms)
            .where(pdays.day >= start, pdays.day <= end)
        ):
            t = atoms[(device, day)]
            _add(t.outcomes, outcome, count)
            t.played_ms += played
        for device, day, slots in conn.execute(
            select(dd.device, dd.day, dd.hb_buckets).where(dd.day >= start, dd.day <= end)
        ):
            atoms[(device, day)].hb_slots += slots
        commands = load_commands(engine, ("schedule.set", "alert.start"), hi)
        a = schema.acks.c
        refused = frozenset((device, jti) for device, jti in conn.execute(
            select(a.device, a.jti).where(a.cmd == "schedule.set",
                                          a.status.in_(("rejected", "stale")))))
        expected = expected_occurrences(commands, devices, tz, lo, hi, refused)
        missing = [e for e in expected if (e.device, e.item_id, e.at_ms) not in played_keys]
        beats = _heartbeats(conn, {m.device for m in missing}, lo, hi, heartbeat_s)
        for e in expected:
            atoms[(e.device, _day(e.at_ms, tz, days_of))].expected += 1
        margin = 2 * heartbeat_s * 1000
        for m in missing:
            t = atoms[(m.device, _day(m.at_ms, tz, days_of))]
            seen = beats.get(m.device, [])
            i = bisect_left(seen, m.at_ms - margin)
            online = i < len(seen) and seen[i] <= m.at_ms + margin
            if online:
                t.missing_unreported += 1
            else:
                t.missing_offline += 1
            not_played.append(NotPlayed(m.device, m.item_id, m.at_ms,
                                        "unreported" if online else "offline", None))
        alerts = _alerts(conn, [c for c in commands if c.cmd == "alert.start"
                                and lo <= c.issued_ms < hi], devices)
    slots_per_day = 86400 // heartbeat_s
    # Online share is over enrolled devices: a stranger's forged proofs must not
    # dilute (or, with no devices file at all, every device seen counts).
    known = sorted({d.id for d in devices} or {k[0] for k in atoms})
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    keyer: Callable[[str, date], Iterable[str]] = {
        "device": lambda dev, day: (dev,),
        "group": lambda dev, day: groups.get(dev, ()) or ("(no group)",),
        "day": lambda dev, day: (day.isoformat(),),
    }[by]
    rows: dict[str, Tally] = defaultdict(Tally)
    per_day: dict[date, Tally] = defaultdict(Tally)
    # Every known device is in the denominator of the online share of each day of
    # its rows, whether or not it sent anything.
    for device in known:
        for key in {k for day in days for k in keyer(device, day)}:
            rows[key].devices.add(device)
            rows[key].slot_total += slots_per_day * (len(days) if by != "day" else 1)
    for day in days:
        per_day[day].devices.update(known)
        per_day[day].slot_total = slots_per_day * len(known)
    for (device, day), atom in atoms.items():
        if not start <= day <= end:
            continue
        for key in keyer(device, day):
            _merge(rows[key], atom)
        _merge(per_day[day], atom)
    not_played.sort(key=lambda n: (n.device, n.at_ms, n.subject))
    return Report(by, start, end, tz, dict(sorted(rows.items())), not_played, alerts,
                  dict(sorted(per_day.items())), groups)


def _merge(into: Tally, atom: Tally) -> None:
    _add_all(into.outcomes, atom.outcomes)
    into.forged += atom.forged
    into.played_ms += atom.played_ms
    into.offsets_ms.extend(atom.offsets_ms)
    if atom.skip_reasons:
        _add_all(into.skip_reasons, atom.skip_reasons)
    if atom.fail_reasons:
        _add_all(into.fail_reasons, atom.fail_reasons)
    into.hb_slots += atom.hb_slots
    into.slot_total += atom.slot_total
    into.expected += atom.expected
    into.missing_offline += atom.missing_offline
    into.missing_unreported += atom.missing_unreported


def _heartbeats(conn: Connection, devices: set[str], lo: int, hi: int,
                heartbeat_s: int) -> dict[str, list[int]]:
    if not devices:
        return {}
    h = schema.heartbeats.c
    margin = 2 * heartbeat_s * 1000
    out: dict[str, list[int]] = defaultdict(list)
    for device, received in conn.execute(
        select(h.device, h.received_ms).where(
            h.device.in_(sorted(devices)), h.received_ms >= lo - margin,
            h.received_ms < hi + margin).order_by(h.device, h.received_ms)
    ):
        out[device].append(received)
    return out


def _alerts(conn: Connection, sent: Sequence[SentCommand], devices: Sequence[DeviceEntry]
            ) -> list[AlertReach]:
    a, p = schema.acks.c, schema.proofs.c
    out: list[AlertReach] = []
    for cmd in sent:
        alert_id = cmd.args.get("alert_id")
        if not isinstance(alert_id, str):
            continue
        targets = set(audience(cmd, devices))
        acked = {row[0] for row in conn.execute(
            select(a.device).where(a.jti == cmd.jti,
                                   a.status.in_(("accepted", "done"))))} & targets
        first: dict[str, int] = {}
        for device, started in conn.execute(
            select(p.device, func.min(p.started_ms)).where(
                p.kind == "alert", p.subject_id == alert_id,
                p.outcome.in_(PLAYED), p.started_ms >= cmd.issued_ms
            ).group_by(p.device)
        ):
            if device in targets and started is not None:
                first[device] = started
        delays = sorted((ms - cmd.issued_ms) / 1000 for ms in first.values())
        out.append(AlertReach(alert_id, cmd.issued_ms, len(targets),
                              len(acked), len(first), delays[0] if delays else None,
                              statistics.median(delays) if delays else None))
    return out
