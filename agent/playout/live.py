"""Live relay sessions (PROTOCOL §4 `live.start` / `live.stop`) for the playout runner.

A session is an `ActiveSource("live", …)` for the planner, exactly like an alert: the
planner decides when it sounds (a higher priority pre-empts it, an emergency alert
pre-empts it, it pre-empts lower schedule items) and the runner calls `begin()` /
`halt()` as it decides. VLC plays straight to the device (playback/live.py), so the
engine is silent while a relay sounds because the planner stopped the engine's voice,
and a relay is halted before anything else starts.

Each sounding segment gets a §6.4 proof (kind `live`). The `live.start` second ack
(`result`) is `done` when the session was stopped (`live.stop`, `until`) and `failed`
when the stream died for good after its reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from agent.dispatch import Dispatcher, Outcome, Result
from agent.model import LiveStart, LiveStop
from agent.playout.proofs import segment_proof
from agent.protocol import Command
from agent.scheduler import ActiveSource, source_key
from agent.wire import proof_id
from playback.live import LiveEnd, LiveStream, LiveUnavailable, check_url, vlc_unavailable

log = logging.getLogger(__name__)

ProofSink = Callable[[dict[str, Any]], Awaitable[None]]


class Stream(Protocol):
    def stop(self) -> None: ...
    async def run(self) -> LiveEnd: ...


StreamFactory = Callable[[str, int], Stream]


@dataclass
class LiveSession:
    args: LiveStart
    since: datetime
    result: asyncio.Future[Result] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    segments: int = 0
    reconnects: int = 0  # stream reopenings over all segments, for the second ack
    end_reason: str | None = None
    until_task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return source_key("live", self.args.session_id)


@dataclass
class _Running:
    session: LiveSession
    stream: Stream
    task: asyncio.Task[None]
    halt_outcome: str | None = None


class LiveRelay:
    """The live sessions accepted and not yet ended, and the one relay sounding now."""

    def __init__(
        self,
        device: str,
        *,
        tz: ZoneInfo,
        proof: ProofSink,
        wake: Callable[[], None],
        wall: Callable[[], float] = time.time,
        stream_factory: StreamFactory | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.device = device
        self.tz = tz
        self.proof = proof
        self.wake = wake
        self.wall = wall
        self.volume = 100
        # RMS heard by the `[audio] monitor` input over a span; set by wiring.
        self.heard: Callable[[float, float], Awaitable[float | None]] | None = None
        self.sessions: dict[str, LiveSession] = {}
        self.running: _Running | None = None
        self._factory: StreamFactory = stream_factory or (
            lambda url, volume: LiveStream(url, device, volume=volume, wall=wall, ca_file=ca_file)
        )

    # ---- what the planner sees -----------------------------------------------------

    def sources(self) -> tuple[ActiveSource, ...]:
        return tuple(
            ActiveSource("live", s.args.session_id, s.args.priority, s.since)
            for s in self.sessions.values()
        )

    # ---- commands ------------------------------------------------------------------

    def add(self, args: LiveStart) -> LiveSession:
        """Accept a session (same session_id: the old one ends, `cancelled`)."""
        self.remove(args.session_id, "updated")
        s = LiveSession(args, datetime.fromtimestamp(self.wall(), UTC))
        if args.until is not None:
            s.until_task = asyncio.get_running_loop().create_task(
                self._until(args.session_id, args.until.timestamp())
            )
        self.sessions[args.session_id] = s
        self.wake()
        return s

    def remove(self, session_id: str, reason: str) -> LiveSession | None:
        """End a session (`live.stop`, `until`); the planner then halts its relay."""
        s = self.sessions.pop(session_id, None)
        if s is None:
            return None
        s.end_reason = reason
        if s.until_task is not None and s.until_task is not asyncio.current_task():
            s.until_task.cancel()
        if self.running is not None and self.running.session is s:
            # The runner halts it on the next round; halting here too makes it prompt
            # even if the runner is busy.
            self.running.halt_outcome = "cancelled"
            self.running.stream.stop()
        else:
            if s.segments == 0:
                asyncio.get_running_loop().create_task(self._unplayed_proof(s))
            _resolve(s, Result(ok=True, detail=_stopped(s, reason)))
        self.wake()
        return s

    async def _until(self, session_id: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.wall()))
        self.remove(session_id, "until")

    # ---- called by the runner as the planner decides ---------------------------------

    def begin(self, session_id: str) -> bool:
        """Start relaying; False if the session is gone (the runner records it failed)."""
        s = self.sessions.get(session_id)
        if s is None:
            return False
        if self.running is not None:  # never two relays at once
            self.running.halt_outcome = "preempted"
            self.running.stream.stop()
        stream = self._factory(s.args.url, self.volume)
        s.segments += 1
        task = asyncio.get_running_loop().create_task(self._relay(s, stream))
        self.running = _Running(s, stream, task)
        return True

    def halt(self, session_id: str, outcome: str) -> None:
        """The planner stopped it: `preempted` (it may sound again) or `cancelled`."""
        r = self.running
        if r is not None and r.session.args.session_id == session_id:
            r.halt_outcome = r.halt_outcome or outcome
            r.stream.stop()

    async def wait_halted(self, timeout: float = 3.0) -> None:
        """Wait until no relay is sounding (before the engine sounds again)."""
        r = self.running
        if r is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(r.task)

    async def stop(self) -> None:
        for sid in list(self.sessions):
            self.remove(sid, "agent_stop")
        await self.wait_halted()

    # ---- the relay ---------------------------------------------------------------------

    async def _relay(self, s: LiveSession, stream: Stream) -> None:
        try:
            end = await stream.run()
        except LiveUnavailable as e:
            log.error("live %s: %s", s.args.session_id, e)
            end = LiveEnd("failed", "not_supported", None, None, 0, 0)
        except Exception as e:  # a relay failure must never take the runner down
            log.exception("live %s failed", s.args.session_id)
            end = LiveEnd("failed", f"relay_error: {e}"[:80], None, None, 0, 0)
        s.reconnects += end.reconnects
        r = self.running
        halt = r.halt_outcome if r is not None and r.stream is stream else None
        if r is not None and r.stream is stream:
            self.running = None
        outcome = halt if end.outcome == "cancelled" and halt else end.outcome
        if outcome == "failed":
            reason = end.reason
            if self.sessions.get(s.args.session_id) is s:
                del self.sessions[s.args.session_id]
            if s.until_task is not None:
                s.until_task.cancel()
            why = _FAILED.get(reason or "", f"live stream {reason}")
            _resolve(s, Result(ok=False, code=reason, detail=why))
        else:
            reason = s.end_reason if outcome == "cancelled" else None
            if outcome == "cancelled":
                _resolve(s, Result(ok=True, detail=_stopped(s, s.end_reason or "live.stop")))
        heard = None
        if self.heard is not None and end.started_wall is not None and end.ended_wall is not None:
            heard = await self.heard(end.started_wall, end.ended_wall)
        await self.proof(
            segment_proof(
                proof_id=proof_id(s.key, end.started_wall or s.since.timestamp()),
                kind="live",
                subject_id=s.args.session_id,
                tz=self.tz,
                outcome=outcome,
                started_wall=end.started_wall,
                ended_wall=end.ended_wall,
                played_ms=end.played_ms,
                reason=reason,
                volume=self.volume,
                heard_dbfs=heard,
            )
        )
        self.wake()  # the planner picks what sounds next (the schedule resumes)

    async def _unplayed_proof(self, s: LiveSession) -> None:
        await self.proof(
            segment_proof(
                proof_id=proof_id(s.key, s.since.timestamp(), tag="unplayed"),
                kind="live",
                subject_id=s.args.session_id,
                tz=self.tz,
                outcome="cancelled",
                reason=s.end_reason,
                volume=self.volume,
            )
        )


# What the operator reads in the failed second ack, for reasons that need explaining.
_FAILED = {
    "stream_lost": "live stream lost: it ended or could not be opened, reconnects failed",
    "tls_untrusted": "the stream server's TLS certificate is not trusted by this device "
    "(system store, or [audio] live_ca_file for a province's own CA)",
    "tls_failed": "the TLS handshake with the stream server failed",
}


def _stopped(s: LiveSession, reason: str) -> str:
    # The operator learns that the stream dropped even though the session went on.
    return f"stopped ({reason})" + (f"; {s.reconnects} reconnects" if s.reconnects else "")


def _resolve(s: LiveSession, result: Result) -> None:
    if not s.result.done():
        s.result.set_result(result)


class LiveHandlers:
    """`live.start` / `live.stop` (PROTOCOL §4): both answer at once; `live.start`'s
    second ack comes when the session ends."""

    def __init__(self, relay: LiveRelay, *, output_ok: Callable[[], bool]) -> None:
        self.relay = relay
        self.output_ok = output_ok

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register("live.start", self.live_start)
        dispatcher.register("live.stop", self.live_stop)

    async def live_start(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, LiveStart)
        args = cmd.args
        try:
            check_url(args.url)
        except ValueError as e:
            return Outcome(status="failed", code="bad_args", detail=str(e))
        if not self.output_ok():
            why = f"audio output {self.relay.device!r} is not available"
            return Outcome(status="failed", code="output_unavailable", detail=why)
        if args.until is not None and args.until.timestamp() <= self.relay.wall():
            return Outcome(status="failed", code="expired", detail="live `until` has passed")
        why = await asyncio.to_thread(vlc_unavailable)
        if why:
            return Outcome(status="failed", code="not_supported", detail=why)
        return Outcome(later=self._run(args))

    async def _run(self, args: LiveStart) -> Result:
        return await self.relay.add(args).result

    async def live_stop(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, LiveStop)
        if self.relay.remove(cmd.args.session_id, "live.stop") is None:
            return Outcome(status="failed", code="unknown_session",
                           detail=f"no live session {cmd.args.session_id!r} is active")  # fmt: skip
        return Outcome()
