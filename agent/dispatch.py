"""From a received payload to an effect and its acks (PROTOCOL §3, §6.3).

The verification itself is the pure `agent.protocol.verify_command`; this module
supplies its inputs (trust, replay store, clock), sends the first ack, runs the
command's handler, and for long-running commands the second ack (`done`/`failed`).

Capabilities register handlers at start (`register`). A command that is known to
the protocol but whose capability is not built into this agent is accepted and then
acked `failed` with code `not_supported`, so the province sees exactly what this
device cannot do rather than silence.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from agent.clock import ClockStatus
from agent.commands import LONG_RUNNING
from agent.protocol import Command, Duplicate, Rejection, VerifyContext, verify_command
from agent.replay import ReplayStore
from agent.reporter import Reporter
from agent.state import StateStore
from agent.timefloor import TimeFloor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """The final word on a long-running command (the second ack)."""

    ok: bool
    code: str | None = None
    detail: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What a handler says right away (the first ack), and optionally what comes later."""

    status: Literal["accepted", "stale", "failed"] = "accepted"
    code: str | None = None
    detail: str | None = None
    warnings: list[str] = field(default_factory=list)
    later: Awaitable[Result] | None = None


Handler = Callable[[Command], Awaitable[Outcome]]


def token_digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class Dispatcher:
    def __init__(
        self,
        ctx: VerifyContext,
        *,
        replay: ReplayStore,
        state: StateStore,
        reporter: Reporter,
        clock_status: Callable[[], ClockStatus],
        wall: Callable[[], float] = time.time,
        floor: TimeFloor | None = None,
    ) -> None:
        self._ctx = ctx
        self._replay = replay
        self._state = state
        self._reporter = reporter
        self._clock_status = clock_status
        self._wall = wall
        self._floor = floor if floor is not None else TimeFloor(state)
        self._handlers: dict[str, Handler] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, cmd: str, handler: Handler) -> None:
        self._handlers[cmd] = handler

    def lower_bound(self) -> float:
        """The time floor (agent/timefloor.py)."""
        return self._floor.value()

    async def handle(self, topic: str, payload: bytes, *, resumed: bool = False) -> None:
        """Verify and act on one command; never raises.

        `resumed` marks a journalled command being re-processed after a crash: if its
        own token was already remembered (we died between accepting and finishing),
        it is carried out again instead of being ignored as a duplicate.
        """
        try:
            await self._handle(topic, payload, resumed=resumed)
        except Exception:
            log.exception("command handling failed unexpectedly")
            await self._reporter.event(
                "error", "internal_error", "command handling failed; see agent log"
            )

    async def _handle(self, topic: str, payload: bytes, *, resumed: bool) -> None:
        digest = token_digest(payload)
        lower = self.lower_bound()
        status = self._clock_status()
        now = self._wall()

        def seen(jti: str) -> str | None:
            stored = self._replay.seen(jti)
            if resumed and stored == digest:
                return None
            return stored

        res = verify_command(
            payload,
            topic,
            self._ctx,
            now=now,
            clock_trusted=status.trusted,
            time_lower_bound=lower,
            seen_jti=seen,
        )
        # Only an accepted command moves the floor (§3 as changed 2026-12-01): a
        # rejected one, even with a verified signature, may come from a key that
        # could not issue it, and its iat is then anyone's word.
        if isinstance(res, Command) and self._floor.after_accept(
            res.iat, res.exp, now if status.trusted else None
        ):
            await asyncio.to_thread(self._floor.persist)

        if isinstance(res, Rejection):
            log.warning("rejected %s (%s): %s", res.cmd, res.code, res.detail)
            await self._reporter.ack(
                jti=res.jti, cmd=res.cmd, status="rejected", code=res.code, detail=res.detail
            )
            return
        if isinstance(res, Duplicate):
            await self._reporter.ack(jti=res.jti, cmd=res.cmd, status="duplicate")
            return

        cmd = res
        await asyncio.to_thread(self._replay.remember, cmd.jti, digest, cmd.exp)
        handler = self._handlers.get(cmd.cmd, _not_supported)
        try:
            outcome = await handler(cmd)
        except Exception as exc:
            log.exception("handler for %s failed", cmd.cmd)
            outcome = Outcome(status="failed", code="internal_error", detail=str(exc)[:200])
        if cmd.cmd in LONG_RUNNING and outcome.status == "failed" and outcome.later is None:
            # A long-running command always gets `accepted` first and its verdict as
            # the second ack (§6.3), also when the handler knew at once it cannot run:
            # a provincial system waiting for done/failed must not wait forever.
            await self._reporter.ack(
                jti=cmd.jti, cmd=cmd.cmd, status="accepted", warnings=list(cmd.warnings)
            )
            await self._reporter.ack(
                jti=cmd.jti,
                cmd=cmd.cmd,
                status="failed",
                code=outcome.code,
                detail=outcome.detail,
                warnings=outcome.warnings or None,
            )
            return
        await self._reporter.ack(
            jti=cmd.jti,
            cmd=cmd.cmd,
            status=outcome.status,
            code=outcome.code,
            detail=outcome.detail,
            warnings=list(cmd.warnings) + outcome.warnings,
        )
        if outcome.later is not None:
            task = asyncio.get_running_loop().create_task(self._finish(cmd, outcome.later))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif cmd.cmd in LONG_RUNNING and outcome.status == "accepted":
            # Every long-running command gets its second ack, even a trivial one.
            await self._reporter.ack(jti=cmd.jti, cmd=cmd.cmd, status="done")

    async def _finish(self, cmd: Command, later: Awaitable[Result]) -> None:
        try:
            result = await later
        except Exception as exc:
            log.exception("%s failed", cmd.cmd)
            result = Result(ok=False, code="internal_error", detail=str(exc)[:200])
        await self._reporter.ack(
            jti=cmd.jti,
            cmd=cmd.cmd,
            status="done" if result.ok else "failed",
            code=result.code,
            detail=result.detail,
            warnings=result.warnings or None,
        )


async def _not_supported(cmd: Command) -> Outcome:
    async def later() -> Result:
        return Result(
            ok=False,
            code="not_supported",
            detail=f"{cmd.cmd} is not supported by this agent version yet",
        )

    return Outcome(status="accepted", later=later())
