"""kill -9 of a real process writing to state.db: nothing promised is lost.

The child prints a line only after `put`/`delete` returned; the parent kills it
with SIGKILL at a random moment in the middle of a burst and then reopens the
file. (A kill -9 keeps the OS page cache; surviving a power cut additionally
rests on synchronous=FULL, which test_storage_db checks is in effect.)
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.db import open_db
from agent.inbox import Inbox
from agent.outbox import Outbox

HERE = Path(__file__).resolve().parent
CHILD = HERE / "storage_child.py"
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from storage_child import payload_for  # noqa: E402


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _kill(proc: subprocess.Popen[str]) -> list[str]:
    """SIGKILL, reap, and return whatever it had already printed."""
    proc.send_signal(signal.SIGKILL)
    rest, _err = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return rest.splitlines()


@pytest.mark.timeout(120)
def test_outbox_keeps_every_returned_put_across_20_kill9(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    rng = random.Random(1123)
    promised: dict[int, int] = {}  # seq -> id for puts that returned
    deleted: set[int] = set()  # ids whose delete returned
    maybe_deleted: set[int] = set()  # killed between put and its delete returning
    start = 0
    for _round in range(20):
        proc = _spawn("outbox", str(db_path), str(start))
        lines: list[str] = []
        target = rng.randint(3, 40)
        deadline = time.monotonic() + 30
        try:
            assert proc.stdout is not None
            while len(lines) < target:
                assert time.monotonic() < deadline, "child too slow"
                line = proc.stdout.readline()
                assert line, f"child died: {proc.stderr.read() if proc.stderr else ''}"
                lines.append(line.strip())
        finally:
            lines += _kill(proc)
        for line in lines:
            op, id_text, seq_text = line.split()
            if op == "P":
                promised[int(seq_text)] = int(id_text)
            else:
                deleted.add(int(id_text))
        last_op, last_id, last_seq = lines[-1].split()
        if last_op == "P" and int(last_seq) % 5 == 0:
            maybe_deleted.add(int(last_id))

        with open_db(db_path) as db:
            assert db.recovered_from is None, db.recovery_reason
            with db.read() as conn:
                assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
            recs = Outbox(db, quota_bytes=64 * 1024 * 1024).pending(limit=100_000)
        seqs: list[int] = []
        for r in recs:
            body = r.payload.rpartition(b"|")[0]
            seq = int(json.loads(body)["seq"])
            assert r.payload == payload_for(seq), f"record {r.id} corrupt"
            seqs.append(seq)
        by_seq = {s: r.id for s, r in zip(seqs, recs, strict=True)}
        assert len(by_seq) == len(seqs), "a put was stored twice"
        assert seqs == sorted(seqs), "pending() is not in insertion order"
        for seq, rid in promised.items():
            if rid in deleted:
                assert seq not in by_seq, f"deleted record {rid} came back"
            elif rid in maybe_deleted:
                assert by_seq.get(seq) in (rid, None)
            else:
                assert by_seq.get(seq) == rid, f"put of seq {seq} (id {rid}) lost"
        start = max([*seqs, *promised, start - 1]) + 1
    assert len(promised) >= 20 * 3


@pytest.mark.timeout(30)
def test_inbox_entry_survives_kill9_right_after_put(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    topic = "tcs/v1/dev/dev-0001/cmd"
    payload = b"eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJ4In0.c2ln"
    proc = _spawn("inbox", str(db_path), topic, payload.hex())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("I "), proc.stderr.read() if proc.stderr else ""
    finally:
        _kill(proc)
    entry_id = int(line.split()[1])

    with open_db(db_path) as db:
        inbox = Inbox(db)
        pending = inbox.pending()
        assert [(e.id, e.topic, e.payload) for e in pending] == [(entry_id, topic, payload)]
        # The broker redelivers the un-acked message after the crash: same entry.
        assert inbox.put(topic, payload) == entry_id
        assert len(inbox.pending()) == 1
