"""`tcs-agent run`: wires the parts together and owns their lifetimes. Nothing else.

Start order matters: storage first (the journal may hold commands from before a
crash), then the link. Stop order: stop taking commands, publish the offline
state, close the link; the outbox keeps whatever was not yet delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass

from agent import __version__, sdnotify
from agent.clock import ClockStatus, clock_status
from agent.config import Config
from agent.db import open_db
from agent.dispatch import Dispatcher
from agent.handlers import SCHEDULE_VERSION_KEY, VOLUME_KEY, CoreHandlers, load_schedule
from agent.heartbeat import Heartbeat, HeartbeatSources
from agent.inbox import Inbox
from agent.intake import Intake
from agent.jws import load_private_key
from agent.link import Announcement, Incoming, Link, LinkSettings
from agent.media import MediaSide
from agent.model import ScheduleSet
from agent.outbox import Outbox
from agent.playout.wiring import start_sound
from agent.protocol import VerifyContext
from agent.replay import ReplayStore
from agent.reporter import Reporter
from agent.reports import Topics, dumps, state_payload
from agent.state import StateStore
from agent.timefloor import TimeFloor
from agent.timeutil import rfc3339_ms

log = logging.getLogger(__name__)

EXIT_RESTART = 75  # the CLI re-executes the agent on this code (agent.restart)


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
    """Run the agent until SIGTERM/SIGINT (exit 0) or `agent.restart` (EXIT_RESTART)."""
    storage = cfg.storage.dir
    storage.mkdir(parents=True, exist_ok=True)
    db = open_db(storage / "state.db")
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
    if (kept := load_schedule(state)) is not None:
        media.schedule_changed(kept.items)  # after a reboot: fetch what is still missing

    # Sound (None with [audio] output = "none"): engine, playout runner, sound handlers.
    sound = await start_sound(
        cfg,
        state,
        reporter,
        clock_trusted=lambda: clock().trusted,
        wall=time.time,
        media_path=media.path_for,
    )

    heartbeat = Heartbeat(
        HeartbeatSources(
            storage_dir=storage,
            playing=sound.playout.playing if sound else None,
            alert_id=sound.playout.alert_id if sound else None,
            audio=sound.audio if sound else None,
            cache=media.heartbeat,
            schedule_version=schedule_version,
            volume=lambda: int(state.get(VOLUME_KEY, 100)),
            clock=clock,
            outbox=outbox.count,
        )
    )

    async def beat_now() -> None:
        if not link.connected.is_set():
            return
        payload = dumps(heartbeat.build(rfc3339_ms(time.time(), tz)))
        with contextlib.suppress(Exception):
            await link.publish(topics.hb, payload, qos=0)

    def request_restart() -> None:
        stop.code = EXIT_RESTART
        # Give the accepted ack a moment to reach the broker before we go.
        asyncio.get_running_loop().call_later(0.5, stop.event.set)

    # --- sec-a (issue 7): priority of alert.stop / live.stop, PROTOCOL §3 step 8 ----
    def active_priority(cmd: str, ident: str) -> int:
        """Priority of the alert / live session a stop names; 0 when none is active."""
        if sound is None:
            return 0
        if cmd == "alert.stop" and (alert := sound.playout.alerts.get(ident)) is not None:
            return alert.args.priority
        if cmd == "live.stop" and sound.live is not None:
            session = sound.live.relay.sessions.get(ident)
            return session.args.priority if session is not None else 0
        return 0
    # --- end sec-a ----------------------------------------------------------------

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
    media.register(dispatcher)
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
    intake = Intake(inbox, handle, link.ack, command_topics)

    if db.recovered_from is not None:
        await reporter.event(
            "error",
            "storage_corrupt",
            f"state database was corrupt and was replaced; old file kept at {db.recovered_from}",
        )
    await intake.load_journal()
    # Forget accepted jtis whose exp has passed, by the time floor only: a trusted
    # clock already moved it, and an untrusted one (or NTP spoofed into the past)
    # must never make a pruned jti acceptable again (issue 7 item 4).
    if clock().trusted and floor.trusted_wall(time.time()):
        await asyncio.to_thread(floor.persist)
    await asyncio.to_thread(replay.prune, floor.value())

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.event.set)

    async def heartbeats() -> None:
        while True:
            await asyncio.sleep(cfg.report.heartbeat_s)
            await beat_now()

    tasks = [
        asyncio.create_task(link.run(), name="link"),
        asyncio.create_task(reporter.pump(link), name="outbox"),
        asyncio.create_task(intake.run(), name="intake"),
        asyncio.create_task(heartbeats(), name="heartbeat"),
        asyncio.create_task(sdnotify.watchdog_loop(), name="watchdog"),
        asyncio.create_task(floor.run(lambda: clock().trusted), name="time-floor"),
    ]
    sdnotify.notify("READY=1")
    log.info("tcs-agent %s started as %s", __version__, cfg.device.id)
    stopper = asyncio.create_task(stop.event.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for t in done:
        if t is not stopper and t.exception() is not None:
            log.error("task %s died: %r", t.get_name(), t.exception())
            stop.code = 1
    sdnotify.notify("STOPPING=1")
    # Let a last ack (e.g. of agent.restart) drain for a moment, then go.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_until_empty(outbox, link), timeout=2.0)
    # Offline state first, while the session is still up (a clean DISCONNECT
    # suppresses the Last Will), then stop everything.
    await link.close(final_state=announce(False))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if sound is not None:
        await sound.stop()
    await media.stop()
    db.close()
    return stop.code


async def _until_empty(outbox: Outbox, link: Link) -> None:
    while link.connected.is_set():
        if await asyncio.to_thread(outbox.count) == 0:
            return
        await asyncio.sleep(0.05)
