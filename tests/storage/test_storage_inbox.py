"""Inbox journal: durable, ordered, idempotent on redelivery, attempts counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.db import open_db
from agent.inbox import Inbox

CMD = "tcs/v1/dev/dev-0001/cmd"
GRP = "tcs/v1/grp/vn-48/cmd"


def test_redelivery_of_a_pending_message_is_the_same_entry(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        inbox = Inbox(db, clock=lambda: 1_795_000_000.0)
        a = inbox.put(CMD, b"token-a")
        b = inbox.put(GRP, b"token-b")
        assert inbox.put(CMD, b"token-a") == a
        # Same payload on another topic is another delivery (audience differs).
        c = inbox.put(GRP, b"token-a")
        assert len({a, b, c}) == 3
        assert [(e.id, e.topic, e.payload) for e in inbox.pending()] == [
            (a, CMD, b"token-a"),
            (b, GRP, b"token-b"),
            (c, GRP, b"token-a"),
        ]
        assert all(e.received_at == 1_795_000_000.0 for e in inbox.pending())


def test_done_forgets_and_a_later_redelivery_is_new(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        inbox = Inbox(db)
        a = inbox.put(CMD, b"token-a")
        b = inbox.put(CMD, b"token-b")
        assert inbox.done(a) is True
        assert inbox.done(a) is False
        assert [e.id for e in inbox.pending()] == [b]
        # Done already: the replay store, not the journal, spots the duplicate.
        again = inbox.put(CMD, b"token-a")
        assert again not in (a, b)
        assert [e.id for e in inbox.pending()] == [b, again]


def test_pending_entries_and_attempts_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_db(path) as db:
        inbox = Inbox(db)
        a = inbox.put(CMD, b"crashes-the-agent")
        assert inbox.mark_attempt(a) == 1
    with open_db(path) as db:
        inbox = Inbox(db)
        (entry,) = inbox.pending()
        assert (entry.id, entry.attempts) == (a, 1)
        assert inbox.mark_attempt(a) == 2
        inbox.done(a)
        with pytest.raises(KeyError, match=f"no pending inbox entry {a}"):
            inbox.mark_attempt(a)
        assert inbox.count() == 0


def test_bad_input_is_named(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        inbox = Inbox(db)
        with pytest.raises(ValueError, match="topic must be a non-empty str"):
            inbox.put("", b"x")
        with pytest.raises(ValueError, match="payload must be bytes"):
            inbox.put(CMD, "text")  # type: ignore[arg-type]
