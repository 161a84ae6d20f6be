"""Replay store: accepted jti -> token digest, kept until exp + 30 s, across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.db import open_db
from agent.replay import LEEWAY_S, ReplayConflict, ReplayStore

T0 = 1_795_000_000


def test_remembered_jti_is_seen_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_db(path) as db:
        store = ReplayStore(db)
        assert store.seen("cmd-1") is None
        store.remember("cmd-1", "digest-1", T0 + 3600)
    with open_db(path) as db:
        assert ReplayStore(db).seen("cmd-1") == "digest-1"


def test_same_token_again_is_fine_other_token_conflicts(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        store = ReplayStore(db)
        store.remember("cmd-1", "digest-1", T0)
        store.remember("cmd-1", "digest-1", T0 + 100)  # keeps the later exp
        with pytest.raises(ReplayConflict, match="cmd-1"):
            store.remember("cmd-1", "digest-2", T0 + 100)
        assert store.seen("cmd-1") == "digest-1"
        assert store.prune(T0 + LEEWAY_S + 1) == 0  # exp moved to T0 + 100


def test_prune_keeps_entries_until_exp_plus_leeway(tmp_path: Path) -> None:
    with open_db(tmp_path / "state.db") as db:
        store = ReplayStore(db)
        store.remember("old", "d-old", T0)
        store.remember("edge", "d-edge", T0 + 10)
        store.remember("live", "d-live", T0 + 3600)
        assert store.prune(T0 + LEEWAY_S) == 0  # exactly at exp + leeway: still kept
        assert store.prune(T0 + LEEWAY_S + 0.5) == 1
        assert store.seen("old") is None
        assert store.seen("edge") == "d-edge"
        assert store.prune(T0 + 10 + LEEWAY_S + 1) == 1
        assert (store.seen("edge"), store.seen("live")) == (None, "d-live")
        assert store.count() == 1


@pytest.mark.parametrize(
    ("jti", "digest", "exp", "message"),
    [
        ("", "d", 1, "jti must be"),
        ("x" * 65, "d", 1, "jti must be"),
        ("ok", "", 1, "digest must be"),
        ("ok", "d", "1", "exp must be an int"),
        ("ok", "d", 1.5, "exp must be an int"),
    ],
)
def test_bad_input_is_named(
    tmp_path: Path, jti: str, digest: str, exp: object, message: str
) -> None:
    with open_db(tmp_path / "state.db") as db:
        with pytest.raises(ValueError, match=message):
            ReplayStore(db).remember(jti, digest, exp)  # type: ignore[arg-type]
        assert ReplayStore(db).count() == 0
