"""The command `agent.update` (PROTOCOL §4) on the releases of agent/update.py.

Old release, on the command:
  1. refuse at once (`failed`) what can never work: the agent does not run from a
     releases layout (`not_supported`), the version is not above the running one and
     `allow_downgrade` is false, or is the running one (`downgrade_refused`), another
     update is under way (`busy`);
  2. otherwise ack `accepted`, wait until no item of priority ≥ 90 is active (§3), fetch
     the bundle through the media cache (sha256 and size verified: `media_missing`),
     install it beside the running release and switch `current` to it, pending, with the
     command's `jti` in the pending record (`update_failed` when any of that fails; the
     running release is untouched);
  3. exit with EXIT_RESTART for systemd to start the new release. No second ack comes
     from here: the new release sends it.

New release, on start (`confirm_when_healthy`): once connected to the broker with every
part up for `[update] healthy_s` seconds it keeps itself (`confirm`) and acks the
update's `jti` `done`; if that does not happen within `confirm_timeout_s`, it switches
back (`rollback`), acks `failed` (`unhealthy`) and exits for systemd to start the
previous release. A release that cannot even start (or dies before that) is switched
back by the unit's first ExecStartPre, scripts/update-guard.sh, after a few starts; the
previous release then acks `failed` from the record the guard leaves. The acks go
through the outbox, which lives in the storage folder
shared by both releases, so they survive the restart and reach the province later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.cache.download import PrefetchReport
from agent.dispatch import Dispatcher, Outcome, Result
from agent.model import AgentUpdate, MediaRef
from agent.protocol import Command
from agent.reports import AckStatus
from agent.update import (
    Layout,
    UpdateRefused,
    check_version,
    confirm,
    pending,
    rollback,
    update_from_bundle,
)

log = logging.getLogger(__name__)

CMD = "agent.update"
POLL_S = 1.0

Fetch = Callable[[MediaRef], Awaitable[Path]]
Install = Callable[..., str]
Ack = Callable[..., Awaitable[None]]


class FetchFailed(Exception):
    """The bundle could not be fetched and verified; the message says why."""


class Updater:
    """The handler of `agent.update`. `layout` is None when the agent does not run from
    a releases layout; `why_not` then says so in the `not_supported` ack."""

    def __init__(
        self,
        layout: Layout | None,
        running: str,
        *,
        fetch: Fetch,
        emergency_active: Callable[[], bool],
        restart: Callable[[], None],
        why_not: str = "",
        install: Install | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self._layout = layout
        self._running = running
        self._fetch = fetch
        self._emergency_active = emergency_active
        self._restart = restart
        self._why_not = why_not
        self._install = install or functools.partial(update_from_bundle, run=_gentle_run)
        self._poll_s = poll_s
        self._busy = False

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(CMD, self.agent_update)

    async def agent_update(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, AgentUpdate)
        args = cmd.args
        layout = self._layout
        if layout is None:
            return Outcome(status="failed", code="not_supported", detail=self._why_not)
        try:
            check_version(args.version, self._running, allow_downgrade=args.allow_downgrade)
        except UpdateRefused as exc:
            return Outcome(status="failed", code="downgrade_refused", detail=str(exc))
        if self._busy or await asyncio.to_thread(pending, layout) is not None:
            return Outcome(status="failed", code="busy",
                           detail="another update is under way or awaits confirmation")
        self._busy = True
        return Outcome(later=self._update(layout, cmd.jti, args))

    async def _update(self, layout: Layout, jti: str, args: AgentUpdate) -> Result:
        try:
            version = await self._install_beside(layout, jti, args)
        except _Failed as exc:
            return exc.result
        finally:
            # Once switched, the pending record says "busy" until the new release decides.
            self._busy = False
        log.warning("agent.update: switched to %s; restarting into it", version)
        # The restart itself waits again for any emergency that began meanwhile.
        self._restart()
        # The second ack is the new release's (after it proved healthy): this one
        # waits to be cancelled by the shutdown, which sends nothing.
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def _install_beside(self, layout: Layout, jti: str, args: AgentUpdate) -> str:
        # PROTOCOL §3: a priority-0 command never interrupts an emergency; nothing is
        # fetched or installed while one sounds, so it has the CPU and the link.
        while self._emergency_active():
            await asyncio.sleep(self._poll_s)
        try:
            bundle = await self._fetch(args.bundle)
        except FetchFailed as exc:
            raise _Failed("media_missing", f"bundle: {exc}") from None
        try:
            return await asyncio.to_thread(
                self._install, layout, bundle, expected=args.version,
                allow_downgrade=args.allow_downgrade, note={"jti": jti},
            )
        except (UpdateRefused, OSError) as exc:
            raise _Failed("update_failed", str(exc)[:300]) from None


def _gentle_run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Building the venv (pip) 19 nice steps below the agent: it runs at Nice=-5
    and its children inherit that, but an install must never starve playback."""
    return subprocess.run(["nice", "-n", "19", *argv], **kw)


class _Failed(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.result = Result(ok=False, code=code, detail=detail)


async def fetch_through_cache(
    prefetch: Callable[[list[MediaRef]], Awaitable[PrefetchReport]],
    path_for: Callable[[str], Awaitable[Path | None]],
    ref: MediaRef,
) -> Path:
    """The bundle as a verified file of the media cache (sha256 and size checked)."""
    report = await prefetch([ref])
    if report.failed:
        raise FetchFailed("; ".join(why for _, why in report.failed))
    path = await path_for(ref.sha256)
    if path is None:
        raise FetchFailed("not in the media cache after fetching")
    return path


async def _ack_record(ack: Ack, record: dict[str, object], status: AckStatus,
                      code: str | None, detail: str) -> None:
    jti = record.get("jti")
    if isinstance(jti, str):
        await ack(jti=jti, cmd=CMD, status=status, code=code, detail=detail)


async def _report_guard_rollback(layout: Layout, running: str, ack: Ack) -> None:
    """scripts/update-guard.sh switched back from a release that never started: say so
    (the update's `failed` ack) and forget it. The ack is in the durable outbox before
    the record goes, so a power cut between the two repeats the ack, never loses it."""
    record = await asyncio.to_thread(pending, layout, layout.rolled_back)
    if record is not None:
        await _ack_record(ack, record, "failed", "unhealthy",
                          f"release {record.get('version')} did not start; "
                          f"rolled back to {running}")
    await asyncio.to_thread(layout.rolled_back.unlink, missing_ok=True)


async def confirm_when_healthy(
    layout: Layout,
    running: str,
    *,
    healthy: Callable[[], bool],
    ack: Ack,
    restart: Callable[[], None],
    healthy_s: float,
    timeout_s: float,
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """On start: keep a pending release that proves healthy, else switch back."""
    await _report_guard_rollback(layout, running, ack)
    record = await asyncio.to_thread(pending, layout)
    if record is None:
        return
    wanted = str(record.get("version"))

    async def send(status: AckStatus, code: str | None, detail: str) -> None:
        await _ack_record(ack, record, status, code, detail)

    if wanted != running:
        # The previous release runs with the record still there: the power went between
        # writing the record and moving `current`, or a technician switched by hand.
        # Either way the new release is not running; the update did not happen.
        if layout.current_version() == running:
            await asyncio.to_thread(layout.pending.unlink, missing_ok=True)
            await send("failed", "update_failed",
                       f"release {wanted} did not take over; still running {running}")
        return
    start = clock()
    up_since: float | None = None
    while True:
        now = clock()
        if healthy():
            up_since = now if up_since is None else up_since
            if now - up_since >= healthy_s:
                # The ack is in the durable outbox before the record goes: a power cut
                # between the two repeats the `done` on the next start, never loses it.
                await send("done", None, f"running {running}")
                await asyncio.to_thread(confirm, layout)
                log.info("agent.update: %s proved healthy and is kept", running)
                return
        else:
            up_since = None
        if now - start >= timeout_s:
            break
        await asyncio.sleep(poll_s)
    try:
        previous = await asyncio.to_thread(rollback, layout)
    except UpdateRefused as exc:
        # Nothing to go back to: keeping the new release beats no agent at all.
        log.error("agent.update: %s unhealthy and cannot roll back: %s", running, exc)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(confirm, layout)
        await send("failed", "unhealthy", f"{running} not healthy; no rollback: {exc}")
        return
    log.error("agent.update: %s not healthy within %ss; back to %s", running, timeout_s,
              previous)
    await send("failed", "unhealthy",
               f"{running} not healthy within {int(timeout_s)} s; rolled back to {previous}")
    restart()
