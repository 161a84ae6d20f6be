"""`tcs-agent run`: wires the parts together and owns their lifetimes. Nothing else.

Start order matters: storage first (the journal may hold commands from before a
crash), then the media cache, the outputs, then the link. Every part is registered
on an `AsyncExitStack` as it starts, so stopping (or a later part failing to start)
tears down in reverse order: stop taking commands, publish the offline state, close
the link, stop the supervised parts, the outputs, the cache, the database; the
outbox keeps whatever was not yet delivered. Long-lived tasks run as supervised
parts (agent/supervisor.py) reported in one liveness registry (agent/liveness.py),
which the systemd watchdog and the heartbeat read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import __version__, sdnotify
from agent.clock import ClockStatus, clock_status
from agent.config import Config
from agent.db import REFUSE_BEFORE_KEY, open_db
from agent.dispatch import Dispatcher
from agent.field import start_field
from agent.handlers import SCHEDULE_VERSION_KEY, CoreHandlers, load_schedule, stored_volume
from agent.heartbeat import Heartbeat, HeartbeatSources
from agent.inbox import Inbox
from agent.intake import Intake
from agent.jws import load_private_key
from agent.link import Announcement, Incoming, Link, LinkSettings
from agent.liveness import Liveness
from agent.local_tests import via_agent
from agent.looplag import LoopLag
from agent.media import MediaSide
from agent.model import ScheduleSet
from agent.outbox import Outbox
from agent.playout.wiring import start_playout
from agent.protocol import VerifyContext
from agent.replay import ReplayStore
from agent.reporter import Reporter
from agent.reports import Topics, dumps, state_payload
from agent.state import StateStore
from agent.status_server import SOCKET_NAME, StatusServer
from agent.status_view import LastError, StatusView
from agent.storagewatch import watch_storage
from agent.supervisor import Supervisor
from agent.timefloor import TimeFloor
from agent.timeutil import rfc3339_ms
from agent.update import Layout, running_release
from agent.updater import Updater, confirm_when_healthy, fetch_through_cache

log = logging.getLogger(__name__)

EXIT_RESTART = 75  # agent.restart: the CLI re-executes the agent (or, under systemd, exits)
RESTART_POLL_S = 1.0  # how often a waiting agent.restart looks for the emergency's end


def link_settings(cfg: Config) -> LinkSettings:
    b = cfg.broker
    return LinkSettings(
        client_id=cfg.device.id,
        host=b.host,
        port=b.port,
        tls=b.tls,
        username=b.username or cfg.device.id,
        password=b.password,
        ca_file=str(b.ca_file) if b.ca_file else None,
        cert_file=str(b.cert_file) if b.cert_file else None,
        key_file=str(b.key_file) if b.key_file else None,
        keepalive_s=b.keepalive_s,
        session_expiry_s=b.session_expiry_s,
        connect_timeout_s=b.connect_timeout_s,
    )


@dataclass
class _Stop:
    event: asyncio.Event
    code: int = 0


async def run(cfg: Config) -> int:
    """Run the agent until SIGTERM/SIGINT (exit 0), `agent.restart` (EXIT_RESTART) or a
    part that cannot be kept alive (exit 1, for systemd to restart it)."""
    async with contextlib.AsyncExitStack() as stack:
        return await _run(cfg, stack)


async def _run(cfg: Config, stack: contextlib.AsyncExitStack) -> int:
    """Start every part, each registered on `stack` for teardown in reverse order, so a
    part failing to start stops whatever started before it."""
    storage = cfg.storage.dir
    db = open_db(storage / "state.db")  # never fails for the medium's sake: see agent/db.py
    stack.callback(db.close)
    outbox = Outbox(db, cfg.storage.outbox_quota_mb * 1024 * 1024)
    inbox = Inbox(db)
    replay = ReplayStore(db)
    state = StateStore(db)
    device_key = load_private_key(cfg.device.key_file)
    tz = cfg.device.timezone
    topics = Topics(cfg.device.id)
    reporter = Reporter(outbox, topics, device_key, tz)
    stop = _Stop(asyncio.Event())
    floor = TimeFloor(state)  # issue 7: the durable time floor (agent/timefloor.py)
    floor.drop_old_bound()

    # One liveness registry: the watchdog pings only while every part is up.
    def show_status() -> None:
        sdnotify.notify(f"STATUS={live.status_line()}")

    live = Liveness(on_change=show_status)
    parts = Supervisor(live, reporter.emit)

    def clock() -> ClockStatus:
        return clock_status(cfg.clock.trust, lower_bound=floor.value(), wall=time.time())

    def schedule_version() -> int | None:
        v = state.get(SCHEDULE_VERSION_KEY)
        return int(v) if v is not None else None

    def announce(online: bool) -> bytes:
        return state_payload(
            online=online,
            at=rfc3339_ms(time.time(), tz),
            agent_version=__version__,
            schedule_version=schedule_version(),
        )

    # Media cache: prefetch over the horizon, media.prefetch, verified paths for players.
    media = MediaSide(cfg, reporter)
    await media.start()
    stack.push_async_callback(media.stop)
    for task in media.tasks():
        live.watch_task(f"cache.{task.get_name()}", task)
    if (kept := load_schedule(state)) is not None:
        media.schedule_changed(kept.items)  # after a reboot: fetch what is still missing

    # Amplifier and modem drivers, health probes (agent/field.py).
    field = await start_field(cfg, reporter.event)
    stack.push_async_callback(field.stop)
    field.register(live)
    # Outputs (None with none configured): one planner loop each, alert coordinator.
    sound = await start_playout(
        cfg,
        state,
        reporter,
        clock_trusted=lambda: clock().trusted,
        wall=time.time,
        media_path=media.path_for,
        spawn=parts.start,
        liveness=live,
        derived_written=media.cache.trim,
        amplifier=field.amplifier,
        inline_media=media.cache,
    )
    if sound is not None:
        stack.push_async_callback(sound.stop)
        # Decoded audio and speech count in the cache quota; what plays is kept.
        media.cache.set_derived(storage / "pcm", sound.files_in_use)
        # Media a schedule needs is decoded as soon as it is stored.
        media.service.on_fetched = lambda _refs, s=sound: s.media_arrived()
    # Parts stop before the outputs they drive (the exit stack unwinds in reverse).
    stack.push_async_callback(parts.aclose)

    lag = LoopLag(reporter.emit)
    heartbeat = Heartbeat(
        HeartbeatSources(
            storage_dir=storage,
            playing=sound.playing if sound else None,
            alert_id=sound.alert_id if sound else None,
            audio=sound.audio if sound else None,
            # A board output's own status first, else whether its device is there.
            display=lambda: (sound.display() if sound else None) or field.display(),
            cache=media.heartbeat,
            schedule_version=schedule_version,
            volume=lambda: stored_volume(state),
            clock=clock,
            outbox=outbox.count,
            extra={
                "parts_down": lambda: live.down_parts() or None,
                "loop_lag_p99_ms": lag.p99_ms,
            },
            health=field.health,
        )
    )

    async def beat_now() -> None:
        if not link.connected.is_set():
            return
        # The beat stats the cache and reads the database: off the loop.
        beat = await asyncio.to_thread(heartbeat.build, rfc3339_ms(time.time(), tz))
        payload = dumps(beat)
        with contextlib.suppress(Exception):
            await link.publish(topics.hb, payload, qos=0)

    restarting: list[asyncio.Task[None]] = []

    def request_restart() -> None:
        async def when_no_emergency() -> None:
            # PROTOCOL §3: a priority-0 command never interrupts; an emergency sounding
            # (or waiting) is let run to its end first.
            while sound is not None and sound.coordinator.emergency_active():
                await asyncio.sleep(RESTART_POLL_S)
            # Give the accepted ack a moment to reach the broker before we go.
            await asyncio.sleep(0.5)
            stop.code = EXIT_RESTART
            stop.event.set()

        if not restarting:
            restarting.append(asyncio.get_running_loop().create_task(when_no_emergency()))

    def active_priority(cmd: str, ident: str) -> int:
        """PROTOCOL §3 step 8: the priority of the alert / live session a stop command
        names (0 when none is active), so a key that could not start it cannot stop it."""
        return sound.active_priority(cmd, ident) if sound is not None else 0


    ctx = VerifyContext(
        device_id=cfg.device.id,
        groups=frozenset(cfg.device.groups),
        trust={k.kid: k for k in cfg.trust},
        active_priority=active_priority,
        max_media_bytes=cfg.storage.cache_quota_mb * 1024 * 1024,
    )
    dispatcher = Dispatcher(
        ctx, replay=replay, state=state, reporter=reporter, clock_status=clock, floor=floor
    )

    async def on_schedule(schedule: ScheduleSet) -> list[str]:
        media.schedule_changed(schedule.items)
        return await sound.on_schedule(schedule) if sound else []

    CoreHandlers(
        state,
        beat_now=beat_now,
        request_restart=request_restart,
        on_schedule=on_schedule,
        on_volume=sound.on_volume if sound else None,
    ).register(dispatcher)
    media.register(dispatcher, after_prefetch=sound.predecode if sound else None)
    releases = Layout(cfg.update.root)
    from_layout = running_release(releases, Path(sys.prefix)) is not None
    # Without systemd a restart re-executes the running release's own interpreter
    # (agent/cli.py), never the one switched to: an update could not take effect.
    under_systemd = bool(os.environ.get("INVOCATION_ID"))
    Updater(
        releases if from_layout and under_systemd else None,
        __version__,
        fetch=functools.partial(fetch_through_cache, media.service.prefetch, media.path_for),
        emergency_active=lambda: sound is not None and sound.coordinator.emergency_active(),
        restart=request_restart,
        why_not=(f"this agent runs from {sys.prefix}, not from a release under "
                 f"{releases.releases}; update it with its installer") if not from_layout
        else "this agent does not run under systemd, which must start the new release",
    ).register(dispatcher)
    if sound is not None:
        sound.register(dispatcher)

    command_topics = frozenset([topics.cmd, *(topics.group_cmd(g) for g in cfg.device.groups)])

    async def handle(topic: str, payload: bytes, resumed: bool) -> None:
        await dispatcher.handle(topic, payload, resumed=resumed)

    async def on_message(msg: Incoming) -> None:
        await intake.on_message(msg)

    link = Link(
        link_settings(cfg),
        subscriptions=sorted(command_topics),
        announcement=Announcement(
            topics.state, online=lambda: announce(True), offline=announce(False)
        ),
        on_message=on_message,
        on_connect=beat_now,
        # Certificate dates mean nothing to a clock that may be years off (no RTC).
        clock_trusted=lambda: clock().trusted,
    )
    intake = Intake(
        inbox, handle, link.ack, command_topics,
        reporter=reporter, refuse_iat_before=state.get(REFUSE_BEFORE_KEY),
    )  # fmt: skip
    storage_watch = await watch_storage(
        db, reporter, state, lambda: intake.unjournalled,
        sound.speaker.engine if sound is not None and sound.speaker is not None else None,
    )
    await intake.load_journal()
    # Forget accepted jtis whose exp has passed, by the time floor only: a trusted
    # clock already moved it, and an untrusted one (or NTP spoofed into the past)
    # must never make a pruned jti acceptable again (issue 7 item 4).
    if clock().trusted and floor.trusted_wall(time.time()):
        await asyncio.to_thread(floor.persist)
    await asyncio.to_thread(replay.prune, floor.value())

    # Local status socket for `tcs-agent status` / `test` (agent/status_server.py).
    last_error = LastError()
    logging.getLogger().addHandler(last_error)
    stack.callback(logging.getLogger().removeHandler, last_error)
    view = StatusView(
        cfg.device.id, f"{cfg.broker.host}:{cfg.broker.port}", tz,
        link_connected=link.connected.is_set, clock=clock, schedule=lambda: load_schedule(state),
        outbox=outbox.count, cache=media.heartbeat, health=field.health, last_error=last_error,
        playing=sound.playing if sound else None, alert_id=sound.alert_id if sound else None,
        parts=lambda: {"down": live.down_parts(), "probes": live.probe_results()},
    )  # fmt: skip
    status = StatusServer(storage / SOCKET_NAME, status=view.build, tests={
        w: functools.partial(via_agent, sound, w) for w in ("speaker", "display")})  # fmt: skip
    try:
        await status.start()
        stack.push_async_callback(status.stop)
    except OSError as e:  # the agent serves without it; the technician gets `doctor`
        log.error("status socket %s not available: %s", status.path, e)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.event.set)

    async def heartbeats() -> None:
        while True:
            await asyncio.sleep(cfg.report.heartbeat_s)
            await beat_now()

    async def close_link() -> None:
        sdnotify.notify("STOPPING=1")
        # Let a last ack (e.g. of agent.restart) drain for a moment, then go.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_until_empty(outbox, link), timeout=2.0)
        # Offline state first, while the session is still up (a clean DISCONNECT
        # suppresses the Last Will), then the parts stop (the exit stack goes on).
        await link.close(final_state=announce(False))

    parts.start("link", link.run)
    parts.start("outbox", lambda: reporter.pump(link))
    parts.start("intake", intake.run)
    parts.start("storage", storage_watch.run)
    parts.start("heartbeat", heartbeats)
    parts.start("looplag", lag.run)
    parts.start("time-floor", lambda: floor.run(lambda: clock().trusted))
    stack.push_async_callback(close_link)
    watchdog = loop.create_task(sdnotify.watchdog_loop(live.healthy), name="watchdog")
    # A release switched to by agent.update keeps itself once healthy, else goes back.
    confirming = loop.create_task(confirm_when_healthy(
        releases, __version__, healthy=lambda: link.connected.is_set() and live.healthy(),
        ack=reporter.ack, restart=request_restart, healthy_s=cfg.update.healthy_s,
        timeout_s=cfg.update.confirm_timeout_s,
    ), name="update-confirm") if from_layout else None  # fmt: skip
    stack.push_async_callback(
        _cancel, [watchdog, *restarting, *([confirming] if confirming else [])]
    )
    sdnotify.notify("READY=1")
    log.info("tcs-agent %s started as %s", __version__, cfg.device.id)
    stopper = loop.create_task(stop.event.wait())
    fatal = loop.create_task(parts.fatal.wait())
    await asyncio.wait([stopper, fatal, watchdog], return_when=asyncio.FIRST_COMPLETED)
    await _cancel([stopper, fatal])
    if parts.fatal.is_set():
        log.error("stopping: %s", parts.fatal_reason)
        stop.code = 1
    return stop.code


async def _cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _until_empty(outbox: Outbox, link: Link) -> None:
    while link.connected.is_set():
        if await asyncio.to_thread(outbox.count) == 0:
            return
        await asyncio.sleep(0.05)
