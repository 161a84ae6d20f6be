"""Commands that crash the agent, and a state file rebuilt from corruption (issue 7
items 4 and 5): real agent, real broker."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from support.agentproc import AgentProc, Province, TrustKey

from agent.db import REFUSE_BEFORE_KEY, REFUSE_LEEWAY_S

DEV = "dev-0001"
GROUPS = ["vn-48"]


def _online_after(province: Province, t: float, timeout: float = 20) -> None:
    province.wait_for(
        lambda m: m.topic.endswith(f"{DEV}/state") and m.json()["online"] and m.at >= t, timeout
    )


def _agent(tmp_path: Path, broker: Any) -> tuple[AgentProc, Province]:
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEV, GROUPS, [key])
    return agent, Province(broker, key)


def test_poison_command_is_dropped_after_three_crashes(tmp_path: Path, broker: Any) -> None:
    agent, province = _agent(tmp_path, broker)
    os.environ["TCS_FAILPOINTS"] = "intake.before_handle"  # every command kills the agent
    try:
        agent.start()
        _online_after(province, 0)
        poison = province.send(DEV, "volume.set", {"level": 10})
        for _ in range(3):  # dies on the command, is restarted, dies again ...
            assert agent.proc is not None
            assert agent.proc.wait(30) == -signal.SIGKILL
            agent.start()
        # ... and the fourth start gives up on it instead of crash-looping.
        ack = province.wait_ack(poison, status="failed", timeout=30)
        assert ack["code"] == "agent_crashed" and ack["cmd"] == "volume.set"
        assert agent.proc is not None and agent.proc.poll() is None
    finally:
        del os.environ["TCS_FAILPOINTS"]
    agent.stop()
    agent.start()
    with agent:
        jti = province.send(DEV, "volume.set", {"level": 20})
        assert province.wait_ack(jti, timeout=20)["status"] == "accepted"
    # The poison command was never carried out, nor retried.
    assert [a["status"] for a in province.acks() if a["jti"] == poison] == ["failed"]
    with sqlite3.connect(agent.config.parent / "state" / "state.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM inbox").fetchone() == (0,)
    province.close()


def _scribble(path: Path, start: int, length: int) -> None:
    rng = random.Random(3)
    data = bytearray(path.read_bytes())
    for off in range(start, min(start + length, len(data))):
        data[off] = rng.randrange(256)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("where", "length"), [(0, 100), (4096, 4096 * 8)], ids=["header", "pages"]
)
def test_used_jti_stays_used_after_the_database_is_rebuilt(
    tmp_path: Path, broker: Any, where: int, length: int
) -> None:
    agent, province = _agent(tmp_path, broker)
    db = agent.config.parent / "state" / "state.db"
    agent.start()
    with agent:
        _online_after(province, 0)
        jti, token = province.token(DEV, "volume.set", {"level": 30}, ttl=3600)
        province.publish(f"tcs/v1/dev/{DEV}/cmd", token)
        assert province.wait_ack(jti)["status"] == "accepted"
        assert agent.stop() == 0
    _scribble(db, where, length)
    started = time.time()
    agent.start()
    with agent:
        _online_after(province, started)
        province.wait_for(
            lambda m: m.topic.endswith("/event") and m.json()["code"] == "storage_corrupt", 10
        )
        # The very same token, and a different token reusing the jti: neither acted on.
        province.publish(f"tcs/v1/dev/{DEV}/cmd", token)
        _, other = province.token(DEV, "volume.set", {"level": 90}, jti=jti, ttl=3600)
        province.publish(f"tcs/v1/dev/{DEV}/cmd", other)
        # A command issued after the cut-off (the corrupt file's last write + the
        # leeway) is obeyed.
        fresh = province.send(DEV, "status.request", iat=int(time.time()) + REFUSE_LEEWAY_S + 2)
        assert province.wait_ack(fresh)["status"] == "accepted"
        after = [a for a in province.acks() if a["jti"] == jti][1:]
        assert len(after) == 2 and all(
            a["status"] in ("duplicate", "rejected") for a in after
        ), after
        assert not any(a["status"] == "accepted" for a in after)
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT value FROM kv WHERE key = 'audio.volume'").fetchone()
        refuse = conn.execute("SELECT value FROM kv WHERE key = ?", (REFUSE_BEFORE_KEY,)).fetchone()
    assert row is None or row[0] == "30"  # never 90
    if where == 0:  # nothing could be read back: older commands are refused
        assert refuse is not None
    province.close()


def test_unusable_stored_state_is_moved_aside_and_the_agent_serves(
    tmp_path: Path, broker: Any
) -> None:
    agent, province = _agent(tmp_path, broker)
    agent.start()
    with agent:
        _online_after(province, 0)
        assert agent.stop() == 0
    db = agent.config.parent / "state" / "state.db"
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)",
            [
                # passes JSON, fails validation (a year no schedule may use)
                ("schedule.current", '{"args": {"version": 3, "items": [{"id": "x"}]}}'),
                ("audio.volume", '"loud"'),  # not a volume
                ("schedule.version", "{not json"),  # not even JSON
            ],
        )
    started = time.time()
    agent.start()
    with agent:
        _online_after(province, started)
        jti = province.send(DEV, "status.request")
        assert province.wait_ack(jti)["status"] == "accepted"
        province.wait_for(lambda m: m.topic.endswith("/hb") and m.at >= started, 10)

        def moved() -> set[str]:
            return {
                m.json()["detail"].split()[1] for m in list(province.messages)
                if m.topic.endswith("/event") and m.json()["code"] == "state_moved_aside"
            }  # fmt: skip

        province.wait_for(lambda m: moved() >= {"schedule.current", "audio.volume"}, 10)
        # The agent serves on: a new schedule is taken.
        jti = province.send(DEV, "schedule.set", {"version": 4, "items": []})
        assert province.wait_ack(jti)["status"] == "accepted"
    with sqlite3.connect(db) as conn:
        kept = dict(conn.execute("SELECT key, value FROM kv WHERE key LIKE 'aside.%'"))
    assert any(k.startswith("aside.schedule.current.") for k in kept)
    assert any(k.startswith("aside.audio.volume.") for k in kept)
    province.close()
