"""Retention and roll-ups: the console database must not grow without bound.

Raw heartbeats go after `raw_days` (their daily roll-up, `device_days`, is written
as they arrive and kept for good). Proofs, suspects, acks, states and events go
after `keep_days`; proofs are first added to `proof_days` (count and played time
per device, local day and outcome), which is kept for good. Commands are kept:
they are few, and they are the province's record of what it ordered.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from agent.central import schema

DAY_MS = 86_400_000


@dataclass(frozen=True)
class RetentionPolicy:
    raw_days: int
    keep_days: int
    tz: tzinfo


def _local_day(ms: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(ms / 1000, tz).date()


def prune(engine: Engine, policy: RetentionPolicy, now_ms: int) -> dict[str, int]:
    """One retention pass in one transaction; returns rows removed per table."""
    raw_cut = now_ms - policy.raw_days * DAY_MS
    keep_cut = now_ms - policy.keep_days * DAY_MS
    removed: dict[str, int] = {}
    p = schema.proofs.c
    with engine.begin() as conn:
        totals: dict[tuple[str, date, str], list[int]] = defaultdict(lambda: [0, 0])
        for device, at_ms, outcome, played in conn.execute(
            select(p.device, p.at_ms, p.outcome, p.played_ms).where(p.at_ms < keep_cut)
        ):
            t = totals[(device, _local_day(at_ms, policy.tz), outcome)]
            t[0] += 1
            t[1] += played
        if totals:
            pd = schema.proof_days
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(pd)
            stmt = stmt.on_conflict_do_update(
                index_elements=[pd.c.device, pd.c.day, pd.c.outcome],
                set_={"count": pd.c.count + stmt.excluded.count,
                      "played_ms": pd.c.played_ms + stmt.excluded.played_ms})
            conn.execute(stmt, [{"device": k[0], "day": k[1], "outcome": k[2],
                                 "count": n, "played_ms": ms}
                                for k, (n, ms) in totals.items()])
        for table, column, cut in (
            (schema.heartbeats, schema.heartbeats.c.received_ms, raw_cut),
            (schema.proofs, p.at_ms, keep_cut),
            (schema.suspect_proofs, schema.suspect_proofs.c.received_ms, keep_cut),
            (schema.acks, schema.acks.c.received_ms, keep_cut),
            (schema.states, schema.states.c.received_ms, keep_cut),
            (schema.events, schema.events.c.received_ms, keep_cut),
        ):
            count = conn.execute(delete(table).where(column < cut)).rowcount
            if count:
                removed[table.name] = count
    return removed
