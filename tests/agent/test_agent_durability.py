"""Nothing the province sends or the device reports is lost: agent stopped, killed,
frozen, broker restarted."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from support.agentproc import AgentProc, Province, TrustKey
from support.timing import poll

DEV = "dev-0001"
MOSQUITTO_KEEPALIVE_GRANULARITY_S = 6.5
GROUPS = ["vn-48", "vn-48-490", "vn-48-490-20194"]


def online_after(province: Province, t: float, timeout: float = 20) -> None:
    province.wait_for(
        lambda m: m.topic.endswith(f"{DEV}/state") and m.json()["online"] and m.at >= t, timeout
    )


def _enrolled_then_stopped(tmp_path: Path, broker: Any) -> tuple[AgentProc, Province]:
    """An agent run once until online (its first connect creates the persistent session),
    then stopped; and the province that signs its commands."""
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEV, GROUPS, [key])
    province = Province(broker, key)
    with agent:
        online_after(province, 0)
        agent.stop()
    return agent, province


def test_commands_sent_while_stopped_are_acked_after_start(tmp_path: Path, broker: Any) -> None:
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEV, GROUPS, [key])
    province = Province(broker, key)
    with agent:
        online_after(province, 0)  # first connect creates the persistent session
        agent.stop()
        province.wait_for(lambda m: m.topic.endswith("/state") and not m.json()["online"])
        jtis = [province.send(DEV, "volume.set", {"level": 10 + i}) for i in range(5)]
        jtis.append(
            province.send(DEV, "volume.set", {"level": 77})
            if False
            else _group_send(province, "vn-48", 21)
        )
        agent.start()
        for jti in jtis:
            assert province.wait_ack(jti, timeout=20)["status"] == "accepted"
    province.close()


def _group_send(province: Province, group: str, level: int) -> str:
    jti, token = province.token(group, "volume.set", {"level": level})
    province.publish(f"tcs/v1/grp/{group}/cmd", token)
    return jti


def test_agent_returns_and_resubscribes_after_broker_restart(tmp_path: Path, broker: Any) -> None:
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEV, GROUPS, [key])
    with agent:
        province = Province(broker, key)
        online_after(province, 0)
        province.close()
        broker.restart()
        restarted = time.time()
        province = Province(broker, key)
        # Back within the back-off cap (60 s); in practice a few seconds.
        online_after(province, restarted, timeout=65)
        jti = province.send(DEV, "status.request")
        assert province.wait_ack(jti, timeout=10)["status"] == "accepted"
        province.close()


def test_command_journalled_and_pubacked_before_a_crash_is_carried_out(
    tmp_path: Path, broker: Any
) -> None:
    agent, province = _enrolled_then_stopped(tmp_path, broker)
    # Armed: the agent SIGKILLs itself right after journalling the command and
    # flushing its PUBACK to the broker, before acting on it.
    os.environ["TCS_FAILPOINTS"] = "intake.after_journal"
    try:
        agent.start()
        online_after(province, time.time() - 1)
        jti = province.send(DEV, "volume.set", {"level": 33})
        assert agent.proc is not None
        assert agent.proc.wait(15) == -signal.SIGKILL
    finally:
        del os.environ["TCS_FAILPOINTS"]
    assert not [a for a in province.acks() if a["jti"] == jti], "acted on before the crash?"
    with agent:
        agent.start()
        assert province.wait_ack(jti, timeout=20)["status"] == "accepted"
    assert "resuming 1 journalled command" in agent.output()
    province.close()


def test_repeated_kill9_loses_no_record(tmp_path: Path, broker: Any) -> None:
    """Commands queued for a stopped device; the agent is then killed at random
    moments while it works through them. Every command is acked in the end."""
    agent, province = _enrolled_then_stopped(tmp_path, broker)
    jtis = [province.send(DEV, "volume.set", {"level": i % 101}) for i in range(300)]
    db = agent.config.parent / "state" / "state.db"
    rng = random.Random(7)
    backlog_seen = 0

    def count(table: str) -> int:
        with sqlite3.connect(db) as conn:
            n: int = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            return n

    for _ in range(6):
        acked = len(province.acks())
        agent.start()
        # Killed at a random moment *while it works through them*: once this run has
        # acked something (however long a loaded machine takes to start it), or once
        # everything was acked.
        poll(lambda n=acked: len(province.acks()) > n or _all_acked(province, jtis), timeout=60)
        time.sleep(rng.uniform(0.0, 0.5))
        agent.kill()
        backlog_seen += count("outbox") + count("inbox")
    with agent:
        agent.start()
        for jti in jtis:
            ack = province.wait_ack(jti, timeout=60)
            assert ack["status"] in ("accepted", "duplicate"), ack
        # Each ack leaves the outbox once the broker has PUBACKed it: soon after the
        # province saw it, not necessarily before.
        poll(lambda: count("outbox") == 0, timeout=60)
    # The kills did land while records were waiting (else the test proved nothing).
    assert backlog_seen > 0
    province.close()


def _all_acked(province: Province, jtis: list[str]) -> bool:
    return set(jtis) <= {a["jti"] for a in province.acks()}


def test_last_will_when_frozen_and_when_killed(tmp_path: Path, broker: Any) -> None:
    key = TrustKey("vn-48-emergency")
    keepalive = 5
    agent = AgentProc.create(tmp_path / "a", broker, DEV, GROUPS, [key], keepalive_s=keepalive)
    province = Province(broker, key)

    def offline_since(t: float, timeout: float) -> float:
        m = province.wait_for(
            lambda m: m.topic.endswith(f"{DEV}/state") and not m.json()["online"] and m.at >= t,
            timeout,
        )
        return m.at - t

    with agent:
        online_after(province, 0)
        frozen = time.time()
        agent.signal(signal.SIGSTOP)
        try:
            # The broker closes the session after 1.5 x keepalive of silence; Mosquitto
            # 2.0 checks keepalives in whole seconds every 5 s, hence the slack.
            took = offline_since(frozen, 30)
            assert took <= 1.5 * keepalive + MOSQUITTO_KEEPALIVE_GRANULARITY_S
        finally:
            agent.signal(signal.SIGCONT)
        online_after(province, time.time(), timeout=30)
        killed = time.time()
        agent.kill()
        # The socket closed: the will is published then, not when a keepalive expires
        # (how soon on a loaded machine is not this test's business).
        assert offline_since(killed, 30) < 1.5 * keepalive
    province.close()
