"""Outbox: order, paging, delete after PUBACK, quota (non-proofs dropped oldest
first, proofs never), persistence across reopen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.db import Database, open_db
from agent.outbox import RECORD_OVERHEAD, Outbox, record_size

TOPIC = "tcs/v1/dev/dev-0001/"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with open_db(tmp_path / "state.db") as d:
        yield d


def _size(kind: str, n: int) -> int:
    return record_size(TOPIC + kind, b"x" * n)


def test_records_come_back_in_order_with_their_fields(db: Database) -> None:
    out = Outbox(db, 1_000_000, clock=lambda: 1_795_000_000.5)
    a = out.put("ack", TOPIC + "ack", b'{"status":"accepted"}')
    s = out.put("other", TOPIC + "state", b'{"online":true}', qos=1, retain=True)
    h = out.put("other", TOPIC + "hb", b"{}", qos=0)
    assert (a.dropped, s.dropped, h.dropped) == (0, 0, 0)
    assert a.stored and a.id < s.id < h.id
    recs = out.pending()
    assert [(r.id, r.kind, r.topic, r.payload, r.qos, r.retain) for r in recs] == [
        (a.id, "ack", TOPIC + "ack", b'{"status":"accepted"}', 1, False),
        (s.id, "other", TOPIC + "state", b'{"online":true}', 1, True),
        (h.id, "other", TOPIC + "hb", b"{}", 0, False),
    ]
    assert all(r.created_at == 1_795_000_000.5 for r in recs)


def test_paging_delete_and_counts(db: Database) -> None:
    out = Outbox(db, 1_000_000)
    ids = [out.put(k, TOPIC + k, b"p").id for k in ("ack", "event", "proof", "proof", "other")]
    assert [r.id for r in out.pending(limit=2)] == ids[:2]
    assert [r.id for r in out.pending(limit=2, after_id=ids[1])] == ids[2:4]
    assert out.count() == 5
    assert out.count_by_kind() == {"ack": 1, "event": 1, "proof": 2, "other": 1}
    assert out.size_bytes() == 5 * RECORD_OVERHEAD + 5 + sum(
        len(TOPIC + k) for k in ("ack", "event", "proof", "proof", "other")
    )
    assert out.delete(ids[2]) is True
    assert out.delete(ids[2]) is False  # a second PUBACK for the same record
    assert out.delete_many([ids[0], ids[4], 999]) == 2
    assert [r.id for r in out.pending()] == [ids[1], ids[3]]
    assert out.count_by_kind() == {"ack": 0, "event": 1, "proof": 1, "other": 0}
    assert out.size_bytes() == _size("event", 1) + _size("proof", 1)


def test_ids_are_never_reused_after_delete(db: Database) -> None:
    out = Outbox(db, 1_000_000)
    first = out.put("ack", TOPIC + "ack", b"1").id
    out.delete(first)
    assert out.put("ack", TOPIC + "ack", b"2").id > first


def test_quota_drops_oldest_non_proofs_first_and_never_proofs(db: Database) -> None:
    rec = _size("ack", 100)
    assert rec == _size("evt", 100)  # same-sized records make the arithmetic plain
    out = Outbox(db, quota_bytes=5 * rec)
    p1 = out.put("proof", TOPIC + "prf", b"x" * 100).id
    a1 = out.put("ack", TOPIC + "ack", b"x" * 100).id
    e1 = out.put("event", TOPIC + "evt", b"x" * 100).id
    p2 = out.put("proof", TOPIC + "prf", b"x" * 100).id
    a2 = out.put("ack", TOPIC + "ack", b"x" * 100).id
    assert out.size_bytes() == 5 * rec

    r = out.put("event", TOPIC + "evt", b"x" * 100)
    assert r.stored and r.dropped == 1  # the oldest non-proof: a1
    assert a1 not in [x.id for x in out.pending()]
    assert [x.id for x in out.pending()] == [p1, e1, p2, a2, r.id]

    # A bigger record needs two slots: e1 and a2 go, the proofs stay.
    big = out.put("ack", TOPIC + "ack", b"x" * (100 + rec))
    assert big.dropped == 2
    assert [x.id for x in out.pending()] == [p1, p2, r.id, big.id]
    assert out.size_bytes() <= out.quota_bytes


def test_proofs_go_past_quota_and_are_never_dropped(db: Database) -> None:
    rec = _size("prf", 100)
    out = Outbox(db, quota_bytes=3 * rec)
    out.put("ack", TOPIC + "ack", b"x" * 100)
    proofs = [out.put("proof", TOPIC + "prf", b"x" * 100) for _ in range(6)]
    assert all(p.stored for p in proofs)
    assert sum(p.dropped for p in proofs) == 1  # only the ack
    assert out.count_by_kind() == {"ack": 0, "event": 0, "proof": 6, "other": 0}
    assert out.size_bytes() == 6 * rec  # over quota: proofs are never lost

    # With only proofs left, an event cannot make room: it drops itself.
    ev = out.put("event", TOPIC + "evt", b'{"code":"outbox_full"}')
    assert (ev.id, ev.dropped, ev.stored) == (0, 1, False)
    assert out.count() == 6
    # After the proofs are published, events fit again.
    out.delete_many(p.id for p in proofs)
    assert out.put("event", TOPIC + "evt", b"ok").stored


def test_record_bigger_than_quota_drops_itself_not_the_others(db: Database) -> None:
    out = Outbox(db, quota_bytes=1000)
    a = out.put("ack", TOPIC + "ack", b"small").id
    r = out.put("event", TOPIC + "evt", b"x" * 2000)
    assert not r.stored and r.dropped == 1
    assert [x.id for x in out.pending()] == [a]


def test_records_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_db(path) as db:
        out = Outbox(db, 1_000_000)
        ids = [out.put("proof", TOPIC + "proof", bytes([i]) * 10).id for i in range(3)]
    with open_db(path) as db:
        out = Outbox(db, 1_000_000)
        assert [(r.id, r.payload) for r in out.pending()] == [
            (i, bytes([n]) * 10) for n, i in enumerate(ids)
        ]
        assert out.size_bytes() == 3 * _size("proof", 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "proof_of_play"}, "kind must be one of"),
        ({"topic": ""}, "topic must be a non-empty str"),
        ({"payload": "text"}, "payload must be bytes"),
        ({"qos": 3}, "qos must be 0, 1 or 2"),
        ({"retain": 1}, "retain must be a bool"),
    ],
)
def test_bad_put_arguments_are_named(db: Database, kwargs: dict[str, object], message: str) -> None:
    out = Outbox(db, 1000)
    args: dict[str, object] = {"kind": "ack", "topic": TOPIC + "ack", "payload": b"{}"}
    args.update(kwargs)
    kind, topic, payload = args.pop("kind"), args.pop("topic"), args.pop("payload")
    with pytest.raises(ValueError, match=message):
        out.put(kind, topic, payload, **args)  # type: ignore[arg-type]
    assert out.count() == 0


def test_bad_quota_is_named(db: Database) -> None:
    with pytest.raises(ValueError, match="quota_bytes must be a positive int"):
        Outbox(db, 0)


def test_in_memory_outbox_bounds_proofs_too_oldest_first(db: Database) -> None:
    """On a full card the outbox lives in RAM: there the quota bounds proofs as well,
    non-proofs going first, then the oldest proofs (counted)."""
    with db.read() as conn:  # the card fills up
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
    size = record_size("t/p", b"p" * 100)
    out = Outbox(db, 5 * size)
    big = out.put("proof", "t/p", b"B" * 8000)  # past the quota, as proofs may go
    assert big.stored and db.degraded == "full"
    first = out.put("proof", "t/p", b"\x00" * 100)
    assert (first.dropped, first.dropped_proofs) == (1, 1)  # in RAM: the big one goes
    ids = [first.id] + [out.put("proof", "t/p", bytes([i]) * 100).id for i in range(1, 4)]
    assert out.put("ack", "t/p", b"a" * 100).dropped == 0  # exactly at the quota
    fifth = out.put("proof", "t/p", b"\xff" * 100)
    assert (fifth.dropped, fifth.dropped_proofs) == (1, 0)  # the ack went first
    sixth = out.put("proof", "t/p", b"\xfe" * 100)
    assert (sixth.dropped, sixth.dropped_proofs) == (1, 1)  # then the oldest proof
    assert [r.id for r in out.pending()] == [*ids[1:], fifth.id, sixth.id]
