"""What the database already knows about each device, so `watch` starts full:
when it was last heard from, its last retained state, and its last genuine proof."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, and_, func, select

from agent.central import schema


@dataclass(frozen=True)
class History:
    last_seen_ms: int | None = None  # last heartbeat or state received
    online: bool | None = None
    schedule_version: int | None = None
    last_proof: str | None = None  # "morning completed"


def load_history(engine: Engine) -> dict[str, History]:
    h, s, p = schema.heartbeats.c, schema.states.c, schema.proofs.c
    seen: dict[str, int] = {}
    online: dict[str, tuple[bool | None, int | None]] = {}
    proofs: dict[str, str] = {}
    with engine.connect() as conn:
        for device, ms in conn.execute(select(h.device, func.max(h.received_ms))
                                       .group_by(h.device)):
            seen[device] = ms
        last_state = (select(s.device, func.max(s.id).label("id")).group_by(s.device)
                      .subquery())
        for device, is_online, received, version in conn.execute(
            select(s.device, s.online, s.received_ms, s.schedule_version)
            .join(last_state, s.id == last_state.c.id)
        ):
            online[device] = (is_online, version)
            seen[device] = max(seen.get(device, 0), received)
        last_proof = (select(p.device, func.max(p.received_ms).label("ms")).group_by(p.device)
                      .subquery())
        for device, subject, outcome in conn.execute(
            select(p.device, p.subject_id, p.outcome).join(
                last_proof, and_(p.device == last_proof.c.device,
                                 p.received_ms == last_proof.c.ms))
        ):
            proofs[device] = f"{subject} {outcome}"
    return {
        d: History(seen.get(d), online.get(d, (None, None))[0], online.get(d, (None, None))[1],
                   proofs.get(d))
        for d in sorted(set(seen) | set(online) | set(proofs))
    }
