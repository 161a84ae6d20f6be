"""Outbox quota against a model, over random sequences of puts and deletes.

Invariants a province would notice if broken: no proof ever disappears unless
it was deleted (published); non-proofs disappear oldest first; the outbox never
sits over quota while it still holds something it may drop; the byte count the
heartbeat reports matches what is stored.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.db import open_db
from agent.outbox import Outbox, record_size

TOPIC = "tcs/v1/dev/dev-0001/x"
QUOTA = 2000

op = st.one_of(
    st.tuples(
        st.just("put"), st.sampled_from(["ack", "event", "proof", "other"]), st.integers(0, 900)
    ),
    st.tuples(st.just("delete"), st.integers(0, 30), st.just(0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=30))
def test_quota_matches_model(ops: list[tuple[str, object, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_db(Path(tmp) / "state.db") as db:
        out = Outbox(db, QUOTA)
        model: list[tuple[int, str, int]] = []  # (id, kind, size) in insertion order
        for name, arg, n in ops:
            if name == "delete":
                if model:
                    rid = model[int(str(arg)) % len(model)][0]
                    assert out.delete(rid)
                    model = [m for m in model if m[0] != rid]
                continue
            kind = str(arg)
            size = record_size(TOPIC, b"x" * n)
            res = out.put(kind, TOPIC, b"x" * n)
            proofs = sum(s for _, k, s in model if k == "proof")
            if kind != "proof" and proofs + size > QUOTA:
                assert (res.stored, res.dropped) == (False, 1)
            else:
                # Model: drop oldest non-proofs until the new record fits.
                dropped = 0
                while sum(s for *_, s in model) + size > QUOTA:
                    victim = next((m for m in model if m[1] != "proof"), None)
                    if victim is None:
                        break
                    model.remove(victim)
                    dropped += 1
                assert res.stored and res.dropped == dropped
                model.append((res.id, kind, size))
            stored = out.pending(limit=1000)
            assert [(r.id, r.kind) for r in stored] == [(i, k) for i, k, _ in model]
            total = sum(s for *_, s in model)
            assert out.size_bytes() == total
            if total > QUOTA:
                assert all(r.kind == "proof" for r in stored)
