"""The command `agent.update` (agent/updater.py) through the real dispatcher: signed
commands in, acks read back from the durable outbox, the bundle served over HTTP and
fetched through the real media cache. What the province sees: refusals as `failed`
with their code, no fetch while an emergency sounds, a corrupt bundle refused, and
(slow) a real release installed beside the running one, switched to, then kept by the
new release once healthy or rolled back when it is not."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.agentproc import REPO, AgentProc, Province, TrustKey
from support.http_media import MediaServer
from support.media_cache import Events
from support.protocol import DEVICE, Signer, make_ctx
from support.releases import NEXT
from support.timing import until

from agent import __version__
from agent.cache.download import Downloader
from agent.cache.service import CacheService
from agent.cache.store import MediaCache
from agent.clock import ClockStatus
from agent.db import open_db
from agent.dispatch import Dispatcher
from agent.outbox import Outbox
from agent.replay import ReplayStore
from agent.reporter import Reporter
from agent.reports import Topics
from agent.state import StateStore
from agent.update import Layout, confirm, pending, switch, update_from_bundle
from agent.updater import Updater, confirm_when_healthy, fetch_through_cache
from agent.wire import device_topic

TOPIC = device_topic(DEVICE, "cmd")
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PROVINCE = Signer.new("vn-48")


def _no_install(*_a: Any, **_kw: Any) -> str:
    raise AssertionError("nothing may be installed here")


@dataclass
class Device:
    """One agent's command path: dispatcher, outbox, media cache, the Updater."""

    dispatcher: Dispatcher
    outbox: Outbox
    reporter: Reporter
    restarts: list[float] = field(default_factory=list)
    emergency: bool = False
    emergency_checks: int = 0

    def acks(self, jti: str) -> list[dict[str, Any]]:
        out = []
        for r in self.outbox.pending(1000):
            if r.topic.endswith("/ack"):
                ack = json.loads(r.payload)
                if ack["jti"] == jti:
                    out.append(ack)
        return out

    async def send(self, args: dict[str, Any]) -> str:
        claims = PROVINCE.claims("agent.update", args, iat=int(time.time()))
        await self.dispatcher.handle(TOPIC, PROVINCE.sign(claims))
        return str(claims["jti"])

    async def final(self, jti: str) -> dict[str, Any]:
        def second() -> dict[str, Any] | None:
            return next((a for a in self.acks(jti) if a["status"] != "accepted"), None)

        return await until(second, f"second ack of {jti}")


@asynccontextmanager
async def device(tmp_path: Path, layout: Layout | None, running: str,
                 install: Callable[..., str] = _no_install) -> AsyncIterator[Device]:
    db = open_db(tmp_path / "state.db")
    outbox = Outbox(db, 64 << 20)
    reporter = Reporter(outbox, Topics(DEVICE), Ed25519PrivateKey.generate(), TZ)
    dispatcher = Dispatcher(make_ctx([PROVINCE.trust_key()]), replay=ReplayStore(db),
                            state=StateStore(db), reporter=reporter,
                            clock_status=lambda: ClockStatus(True, "ntp"))
    cache = MediaCache(tmp_path / "cache", 256 << 20, emit_event=Events(), reserve_bytes=0)
    cache.recover()
    downloader = Downloader(cache, attempts=1, allow_file=False, allow_private_hosts=True)
    service = CacheService(cache, downloader)
    dev = Device(dispatcher, outbox, reporter)

    def emergency_active() -> bool:
        dev.emergency_checks += 1
        return dev.emergency

    Updater(layout, running,
            fetch=lambda ref: fetch_through_cache(service.prefetch, service.path_for, ref),
            emergency_active=emergency_active, restart=lambda: dev.restarts.append(time.time()),
            why_not="runs from a checkout", install=install, poll_s=0.01,
            ).register(dispatcher)  # fmt: skip
    try:
        yield dev
    finally:
        await downloader.aclose()
        db.close()


def _bundle_ref(url: str, body: bytes) -> dict[str, Any]:
    return {"url": url, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body),
            "type": "application/x-tar"}


def _releases(tmp_path: Path, *versions: str, running: str = "1.2.0",
              pending_jti: str | None = None) -> Layout:
    """Release folders as install_release leaves them (no real venv needed here),
    `running` current and confirmed; with `pending_jti`, switched to the last of
    `versions` by that update, pending."""
    layout = Layout(tmp_path / "opt")
    for version in versions:
        (layout.release(version) / "venv").mkdir(parents=True)
        (layout.release(version) / ".complete").touch()
    switch(layout, running)
    confirm(layout)
    if pending_jti is not None:
        switch(layout, versions[-1], {"jti": pending_jti})
    return layout


class Acks(list[dict[str, Any]]):
    """What confirm_when_healthy sent, in order (its `ack` callable)."""

    async def __call__(self, **kw: Any) -> None:
        self.append(kw)


REF = _bundle_ref("http://127.0.0.1:9/never.tar", b"x")


def test_not_supported_when_the_agent_does_not_run_from_releases(tmp_path: Path) -> None:
    async def main() -> list[dict[str, Any]]:
        async with device(tmp_path, None, "1.2.0") as dev:
            jti = await dev.send({"version": "1.3.0", "bundle": REF})
            await dev.final(jti)
            return dev.acks(jti)

    acks = asyncio.run(main())
    assert [a["status"] for a in acks] == ["accepted", "failed"]
    assert acks[1]["code"] == "not_supported" and acks[1]["detail"] == "runs from a checkout"


@pytest.mark.parametrize("version, says", [("1.1.0", "below the running 1.2.0"),
                                           ("1.2.0", "already running")])
def test_lower_or_equal_version_refused(tmp_path: Path, version: str, says: str) -> None:
    layout = _releases(tmp_path, "1.2.0")

    async def main() -> list[dict[str, Any]]:
        async with device(tmp_path, layout, "1.2.0") as dev:
            jti = await dev.send({"version": version, "bundle": REF})
            await dev.final(jti)
            return dev.acks(jti)

    acks = asyncio.run(main())
    assert [a["status"] for a in acks] == ["accepted", "failed"]
    assert acks[1]["code"] == "downgrade_refused" and says in acks[1]["detail"]
    assert layout.current_version() == "1.2.0" and pending(layout) is None


def test_waits_for_the_emergency_then_refuses_a_corrupt_bundle(tmp_path: Path) -> None:
    layout = _releases(tmp_path, "1.2.0")
    good = b"a release bundle " * 1000
    with MediaServer() as server:
        # The server sends other bytes than the ones the command's sha256 names.
        url = server.add("/r.tar", b"X" + good[1:])

        async def main() -> tuple[list[dict[str, Any]], int]:
            async with device(tmp_path, layout, "1.2.0") as dev:
                dev.emergency = True
                jti = await dev.send({"version": "1.3.0", "bundle": _bundle_ref(url, good)})
                # Accepted at once, then it waits: no request reaches the server while
                # the emergency sounds, however often the updater looks.
                await until(lambda: dev.emergency_checks >= 5, "the updater polling")
                during = len(server.served("/r.tar"))
                assert [a["status"] for a in dev.acks(jti)] == ["accepted"]
                dev.emergency = False
                await dev.final(jti)
                # A failed update leaves the device free for the next one.
                again = await dev.send({"version": "1.3.0", "bundle": _bundle_ref(url, good)})
                assert (await dev.final(again))["code"] == "media_missing"
                return dev.acks(jti), during

        acks, during = asyncio.run(main())
    assert during == 0
    assert [a["status"] for a in acks] == ["accepted", "failed"]
    assert acks[1]["code"] == "media_missing" and "do not hash to" in acks[1]["detail"]
    assert layout.current_version() == "1.2.0" and pending(layout) is None
    assert layout.installed() == ["1.2.0"]


def test_unhealthy_new_release_rolls_back_and_says_so(tmp_path: Path) -> None:
    layout = _releases(tmp_path, "1.2.0", "1.3.0", pending_jti="upd-1")
    ticks = iter(range(10_000))
    sent = ack = Acks()
    restarts: list[int] = []

    asyncio.run(confirm_when_healthy(
        layout, "1.3.0", healthy=lambda: False, ack=ack, restart=lambda: restarts.append(1),
        healthy_s=60, timeout_s=900, poll_s=0, clock=lambda: float(next(ticks)),
    ))  # fmt: skip
    assert layout.current_version() == "1.2.0" and pending(layout) is None
    assert restarts == [1]
    assert len(sent) == 1 and sent[0]["jti"] == "upd-1" and sent[0]["status"] == "failed"
    assert sent[0]["code"] == "unhealthy" and "rolled back to 1.2.0" in sent[0]["detail"]


def test_healthy_only_after_a_continuous_stretch(tmp_path: Path) -> None:
    layout = _releases(tmp_path, "1.2.0", "1.3.0", pending_jti="upd-2")
    now = [0.0]
    # Up for 40 s, down once (the broker dropped), then up for good.
    states = iter([True] * 40 + [False] + [True] * 1000)
    sent: list[dict[str, Any]] = []

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    async def ack(**kw: Any) -> None:
        # Durable before the record goes: a power cut between repeats it, never loses it.
        assert pending(layout) is not None
        sent.append(kw)

    asyncio.run(confirm_when_healthy(
        layout, "1.3.0", healthy=lambda: next(states), ack=ack,
        restart=lambda: pytest.fail("a healthy release must not restart"),
        healthy_s=60, timeout_s=900, poll_s=0, clock=clock,
    ))  # fmt: skip
    assert layout.current_version() == "1.3.0" and pending(layout) is None
    assert [(s["jti"], s["status"]) for s in sent] == [("upd-2", "done")]
    assert now[0] >= 41 + 60, "the stretch restarted after the drop"


def test_power_cut_before_the_switch_leaves_the_old_release(tmp_path: Path) -> None:
    layout = _releases(tmp_path, "1.2.0", "1.3.0")
    # switch() writes the pending record first, then moves `current`: the power went
    # between the two.
    layout.pending.write_text(json.dumps({"jti": "upd-3", "version": "1.3.0",
                                          "previous": "1.2.0"}))
    sent = ack = Acks()

    asyncio.run(confirm_when_healthy(
        layout, "1.2.0", healthy=lambda: True, ack=ack, restart=lambda: pytest.fail("restart"),
        healthy_s=60, timeout_s=900,
    ))  # fmt: skip
    assert layout.current_version() == "1.2.0" and pending(layout) is None
    assert [(s["jti"], s["status"], s["code"]) for s in sent] == [
        ("upd-3", "failed", "update_failed")]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_update_installs_switches_and_the_new_release_confirms(
    tmp_path: Path, broker: Any, bundles: tuple[Path, Path]
) -> None:
    """End to end with real releases: the installed agent (this version) gets
    `agent.update` for NEXT, fetches the bundle over HTTP, installs it beside itself,
    switches and exits 75; started again the way the unit does (guard, then
    `current`), NEXT proves healthy, keeps itself and acks the update `done`."""
    current, nxt = bundles
    layout = Layout(tmp_path / "opt")
    update_from_bundle(layout, current)
    confirm(layout)
    key = TrustKey("vn-48")
    extra = (f'\n[cache]\nallow_private_hosts = true\n\n[update]\nroot = "{layout.prefix}"\n'
             "healthy_s = 5\nconfirm_timeout_s = 300\n")
    agent = AgentProc.create(tmp_path / "a", broker, "dev-0001", ["vn-48"], [key], extra=extra)
    env = {**os.environ, "INVOCATION_ID": "0123456789abcdef", "TCS_LOG_LEVEL": "debug",
           "TCS_AGENT_PREFIX": str(layout.prefix)}
    log = tmp_path / "agent.log"

    def start_unit() -> subprocess.Popen[bytes]:
        """What systemd does on each start: the guard, then the current release."""
        subprocess.run(["sh", str(REPO / "scripts" / "update-guard.sh")], env=env, check=True,
                       timeout=30)
        with log.open("ab") as out:
            return subprocess.Popen([str(layout.current / "venv" / "bin" / "tcs-agent"), "run",
                                     "-c", str(agent.config)], stdout=out,
                                    stderr=subprocess.STDOUT, cwd=tmp_path, env=env)

    body = nxt.read_bytes()
    province = Province(broker, key)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with MediaServer() as server:
            url = server.add("/next.tar", body)
            procs.append(start_unit())
            province.wait_for(lambda m: m.topic.endswith("/state")
                              and m.json().get("online") is True, timeout=60)
            jti = province.send("dev-0001", "agent.update",
                                {"version": NEXT, "bundle": _bundle_ref(url, body)})
            province.wait_ack(jti, status="accepted", timeout=30)
            code = procs[0].wait(600)
            record = pending(layout)
        assert code == 75, log.read_text()[-3000:]
        assert record == {"jti": jti, "version": NEXT, "previous": __version__}
        assert [a["status"] for a in province.acks() if a["jti"] == jti] == ["accepted"]
        procs.append(start_unit())
        done = province.wait_ack(jti, status="done", timeout=300)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(30)
        province.close()
    assert done["detail"] == f"running {NEXT}", done
    assert layout.current_version() == NEXT and pending(layout) is None
    assert layout.installed() == [__version__, NEXT]


def test_guard_rolls_back_a_release_that_does_not_start(tmp_path: Path) -> None:
    """scripts/update-guard.sh, as the unit's first ExecStartPre runs it: after three
    starts of the new release without it confirming itself, the next start is the
    previous release's, which then reports the update failed."""
    layout = _releases(tmp_path, "1.2.0", "1.3.0", pending_jti="upd-4")
    guard = REPO / "scripts" / "update-guard.sh"
    env = {"PATH": "/usr/bin:/bin", "TCS_AGENT_PREFIX": str(layout.prefix)}

    def start() -> str:
        out = subprocess.run(["sh", str(guard)], env=env, capture_output=True, text=True,
                             check=True, timeout=30)
        return out.stderr

    for _ in range(3):  # systemd starting (and the new release dying) three times
        assert start() == ""
        assert layout.current_version() == "1.3.0"
    assert "back to 1.2.0" in start()
    assert layout.current_version() == "1.2.0" and pending(layout) is None
    sent = ack = Acks()

    asyncio.run(confirm_when_healthy(
        layout, "1.2.0", healthy=lambda: True, ack=ack, restart=lambda: pytest.fail("restart"),
        healthy_s=60, timeout_s=900,
    ))  # fmt: skip
    assert [(s["jti"], s["status"], s["code"]) for s in sent] == [("upd-4", "failed", "unhealthy")]
    assert "1.3.0 did not start" in sent[0]["detail"]
    assert not layout.rolled_back.exists()
    # With nothing pending the guard changes nothing and forgets its count.
    assert start() == "" and layout.current_version() == "1.2.0"
    assert not (layout.prefix / "update-starts").exists()


def test_running_agent_from_a_checkout_answers_not_supported(tmp_path: Path,
                                                             broker: Any) -> None:
    """The real agent process (run from this source tree, not from a release) wires
    the handler: the province gets `accepted`, then `failed` `not_supported` saying why."""
    key = TrustKey("vn-48")
    agent = AgentProc.create(tmp_path / "a", broker, "dev-0001", ["vn-48"], [key])
    province = Province(broker, key)
    try:
        with agent.start():
            province.wait_for(lambda m: m.topic.endswith("/state")
                              and m.json().get("online") is True, timeout=60)
            jti = province.send("dev-0001", "agent.update", {
                "version": "99.0", "bundle": _bundle_ref("https://cdn.example.vn/r.tar", b"r")})
            province.wait_ack(jti, status="accepted", timeout=30)
            failed = province.wait_ack(jti, status="failed", timeout=30)
    finally:
        province.close()
    assert failed["code"] == "not_supported", failed
    assert "not from a release under /opt/tcs-agent/releases" in failed["detail"], failed
