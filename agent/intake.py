"""Received commands: journal first, then tell the broker, then act.

With manual PUBACK the broker keeps (and re-delivers) a QoS 1 command until we
acknowledge it, and we acknowledge it only once it is in the journal
(agent/inbox.py). So a command the broker has delivered survives a `kill -9` at any
point: before the journal write the broker re-delivers it, after it the journal
replays it at the next start.

When the journal cannot be made durable (a full or read-only card: the database then
lives in memory, agent/db.py; or the journal fails outright) the command is still
PUBACKed and acted on: the choice is to obey now rather than to leave the command
with the broker, which would re-deliver it to an agent that still cannot journal it,
forever. Such commands are counted in `unjournalled`; a crash before they are done
loses them, as it would lose any in-memory state.

A command whose handling starts and never ends (it crashed the agent) is tried at
most `MAX_ATTEMPTS` times: the journal counts attempts durably, and the next start
acks it `failed` (`agent_crashed`) and drops it instead of crash-looping the device.

After the state database was rebuilt from a corrupt file whose replay store could not
be read in full (agent/db.py), commands issued before that file's last write (+ leeway)
are refused `replayed` here, before verification: a used jti could otherwise be
accepted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from agent import failpoints
from agent.db import StorageError
from agent.inbox import Inbox
from agent.jws import b64url_decode
from agent.link import Incoming
from agent.protocol import MAX_PAYLOAD
from agent.reporter import Reporter

log = logging.getLogger(__name__)

Handle = Callable[[str, bytes, bool], Awaitable[None]]

MAX_ATTEMPTS = 3
_ECHO_MAX = 64  # as the verifier echoes jti/cmd (PROTOCOL §3: jti ≤ 64)


class Intake:
    def __init__(
        self,
        inbox: Inbox,
        handle: Handle,
        ack: Callable[[Incoming], None],
        command_topics: frozenset[str],
        *,
        reporter: Reporter | None = None,
        refuse_iat_before: float | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._inbox = inbox
        self._handle = handle
        self._ack = ack
        self._topics = command_topics
        self._reporter = reporter
        self._refuse_before = refuse_iat_before
        self._max_attempts = max_attempts
        self._queue: asyncio.Queue[tuple[int, str, bytes, bool]] = asyncio.Queue()
        self._queued: set[int] = set()
        self._no_journal_ids = itertools.count(-1, -1)  # ids of commands not journalled
        self.unjournalled = 0  # commands acted on without a durable journal entry

    async def load_journal(self) -> int:
        """Queue what the journal still holds from before a crash; returns how many."""
        try:
            pending = await asyncio.to_thread(self._inbox.pending)
        except StorageError as exc:
            log.error("command journal unreadable, starting without it: %s", exc)
            return 0
        for entry in pending:
            self._enqueue(entry.id, entry.topic, entry.payload, resumed=True)
        if pending:
            log.info("resuming %d journalled command(s) from before the last stop", len(pending))
        return len(pending)

    async def on_message(self, msg: Incoming) -> None:
        if msg.topic not in self._topics:
            # The broker ACL should make this impossible; never act on it either way.
            log.warning("message on unexpected topic %r ignored", msg.topic)
            self._ack(msg)
            return
        try:
            entry_id = await asyncio.to_thread(self._inbox.put, msg.topic, msg.payload)
            durable = self._inbox.durable
        except StorageError as exc:
            log.error("command journal unwritable, acting on the command without it: %s", exc)
            entry_id, durable = next(self._no_journal_ids), False
        if not durable:
            self.unjournalled += 1
        self._ack(msg)
        await failpoints.hit_after_io("intake.after_journal")
        self._enqueue(entry_id, msg.topic, msg.payload, resumed=False)

    def _enqueue(self, entry_id: int, topic: str, payload: bytes, *, resumed: bool) -> None:
        if entry_id in self._queued:
            return  # a re-delivery of a command still waiting here
        self._queued.add(entry_id)
        self._queue.put_nowait((entry_id, topic, payload, resumed))

    async def run(self) -> None:
        """Act on commands one at a time, in arrival order. Runs forever."""
        while True:
            entry_id, topic, payload, resumed = await self._queue.get()
            attempts = await self._attempt(entry_id)
            claims = _peek_claims(payload)
            if attempts > self._max_attempts:
                await self._give_up(claims, attempts)
            elif (reason := self._refused(claims)) is not None:
                await self._refuse(claims, reason)
            else:
                failpoints.hit("intake.before_handle")
                # Not in a `finally`: a command interrupted by shutdown stays in the
                # journal and is carried out at the next start.
                await self._handle(topic, payload, resumed)
            if entry_id > 0:
                try:
                    await asyncio.to_thread(self._inbox.done, entry_id)
                except StorageError as exc:
                    log.error("could not mark command %d done: %s", entry_id, exc)
            self._queued.discard(entry_id)

    async def _attempt(self, entry_id: int) -> int:
        """Count one more start of processing (durably, before it starts)."""
        if entry_id <= 0:
            return 1
        try:
            return await asyncio.to_thread(self._inbox.mark_attempt, entry_id)
        except (StorageError, KeyError) as exc:
            log.error("could not count the attempt of command %d: %s", entry_id, exc)
            return 1

    async def _give_up(self, claims: dict[str, Any], attempts: int) -> None:
        jti, cmd = _echo(claims, "jti"), _echo(claims, "cmd")
        detail = (
            f"handling this command stopped the agent {attempts - 1} times; "
            "it was dropped without being carried out"
        )
        log.error("poison command %s (%s) dropped: %s", jti, cmd, detail)
        if self._reporter is not None:
            await self._reporter.ack(
                jti=jti, cmd=cmd, status="failed", code="agent_crashed", detail=detail
            )
            await self._reporter.event("error", "command_dropped", f"{cmd} {jti}: {detail}")

    def _refused(self, claims: dict[str, Any]) -> str | None:
        before = self._refuse_before
        iat = claims.get("iat")
        if before is None or not isinstance(iat, int) or isinstance(iat, bool):
            return None
        if iat >= before:
            return None
        return (
            "issued before the device's state database was rebuilt from a corrupt file "
            "(its replay store was lost); send it again with a new jti"
        )

    async def _refuse(self, claims: dict[str, Any], detail: str) -> None:
        jti, cmd = _echo(claims, "jti"), _echo(claims, "cmd")
        log.warning("refused %s (%s): %s", jti, cmd, detail)
        if self._reporter is not None:
            await self._reporter.ack(
                jti=jti, cmd=cmd, status="rejected", code="replayed", detail=detail
            )


def _peek_claims(payload: bytes) -> dict[str, Any]:
    """The claims of a compact JWS, unverified (for echo and the refusal by iat only:
    refusing on an unverified claim can only ever stop a command, never start one)."""
    if len(payload) > MAX_PAYLOAD:  # the verifier rejects it anyway; never parse it
        return {}
    parts = payload.split(b".")
    if len(parts) != 3:
        return {}
    with contextlib.suppress(ValueError, UnicodeDecodeError, RecursionError):
        claims = json.loads(b64url_decode(parts[1]))
        if isinstance(claims, dict):
            return claims
    return {}


def _echo(claims: dict[str, Any], key: str) -> str | None:
    value = claims.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= _ECHO_MAX else None
