"""Supervised parts and the one liveness registry, seen the way systemd sees them:
through a NOTIFY_SOCKET the test binds (TESTING-NOTES.md), and in process."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.agentproc import AgentProc, Province, TrustKey

from agent.liveness import Liveness
from agent.supervisor import Supervisor

DEVICE = "dev-0001"


class NotifySocket:
    """What the agent tells systemd, in order (read at once by a thread, like systemd)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.got: list[str] = []
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._seen = 0

    def _read(self) -> None:
        while not self._closed:
            try:
                msg = self.sock.recv(4096).decode()
            except (TimeoutError, OSError):
                continue
            with self._cond:
                self.got.append(msg)
                self._cond.notify_all()

    def read_until(self, pred: Any, hang_s: float = 60.0) -> str:
        """The next notification (after the last one returned) satisfying `pred`;
        `hang_s` only guards against a hung test."""
        give_up = time.monotonic() + hang_s
        with self._cond:
            while True:
                while self._seen < len(self.got):
                    msg = self.got[self._seen]
                    self._seen += 1
                    if pred(msg):
                        return msg
                left = give_up - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"never notified as expected; got {self.got[-20:]}")
                self._cond.wait(left)

    def close(self) -> None:
        self._closed = True
        self._reader.join(5)
        self.sock.close()


def test_agent_liveness_dead_part_stops_watchdog_until_restarted(
    tmp_path: Path, broker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEVICE, ["vn-48"], [key], heartbeat_s=5)
    notify = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s while healthy
    monkeypatch.setenv("TCS_FAILPOINTS", "part.heartbeat")
    province = Province(broker, key)
    try:
        with agent:
            notify.read_until(lambda m: m == "READY=1")
            notify.read_until(lambda m: m == "WATCHDOG=1")
            down = notify.read_until(lambda m: m.startswith("STATUS=down"))
            assert "heartbeat" in down, down
            before = notify._seen
            notify.read_until(lambda m: m.startswith("STATUS=all"))
            # Not one ping while the part was dead (several would fit in its restart delay).
            dead = notify.got[before : notify._seen]
            assert "WATCHDOG=1" not in dead, dead
            notify.read_until(lambda m: m == "WATCHDOG=1")
            # The operator saw it die and come back.
            failed = province.wait_for(
                lambda m: m.topic.endswith("/event") and m.json()["code"] == "part_failed", 30
            ).json()
            assert "heartbeat" in failed["detail"]
            province.wait_for(
                lambda m: m.topic.endswith("/event") and m.json()["code"] == "part_restored", 30
            )
            # The restarted heartbeat beats again.
            seen = sum(1 for m in province.messages if m.topic.endswith("/hb"))
            province.wait_for(
                lambda m: (
                    m.topic.endswith("/hb")
                    and sum(1 for x in province.messages if x.topic.endswith("/hb")) > seen + 1
                ),
                30,
            )
            agent.signal(signal.SIGTERM)
            notify.read_until(lambda m: m == "STOPPING=1")
            assert agent.proc is not None
            assert agent.proc.wait(30) == 0
    finally:
        province.close()
        notify.close()


def test_agent_liveness_part_that_keeps_dying_is_fatal() -> None:
    """A part that cannot be kept alive ends the agent (non-zero, systemd restarts it)."""
    events: list[tuple[str, str, str]] = []

    async def main() -> None:
        live = Liveness()
        sup = Supervisor(live, lambda *e: events.append(e), restart_delay_s=0.0, max_restarts=2)

        async def broken() -> None:
            raise OSError("device gone")

        async def fine() -> None:
            await asyncio.Event().wait()

        sup.start("fine", fine)
        sup.start("broken", broken)
        await sup.fatal.wait()
        assert not live.healthy()
        assert live.down_parts() == {"broken": "died: OSError('device gone')"}
        await sup.aclose()

    asyncio.run(main())
    codes = [(lvl, code) for lvl, code, _ in events]
    assert codes[-1] == ("error", "part_failed")
    assert "agent exits" in events[-1][2]
    assert codes.count(("info", "part_restored")) == 2


def test_agent_liveness_watched_task_and_probes() -> None:
    async def main() -> None:
        changes: list[str] = []
        live = Liveness()
        live._on_change = lambda: changes.append(live.status_line())

        async def dies() -> None:
            raise RuntimeError("boom")

        task = asyncio.get_running_loop().create_task(dies(), name="x")
        live.watch_task("engine", task)
        assert live.healthy()
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0)  # done callbacks run on the next turn
        assert not live.healthy()
        assert changes == ["down: engine (died: RuntimeError('boom'))"]
        live.add_probe("modem", lambda: "no SIM")
        live.add_probe("broken", lambda: 1 / 0)  # type: ignore[arg-type,return-value]
        res = live.probe_results()
        assert res["modem"] == "no SIM" and res["broken"].startswith("probe failed")

    asyncio.run(main())
