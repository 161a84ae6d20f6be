"""Received commands: journal first, then tell the broker, then act.

With manual PUBACK the broker keeps (and re-delivers) a QoS 1 command until we
acknowledge it, and we acknowledge it only once it is in the durable journal
(agent/inbox.py). So a command the broker has delivered survives a `kill -9` at any
point: before the journal write the broker re-delivers it, after it the journal
replays it at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from agent import failpoints
from agent.inbox import Inbox
from agent.link import Incoming

log = logging.getLogger(__name__)

Handle = Callable[[str, bytes, bool], Awaitable[None]]


class Intake:
    def __init__(
        self,
        inbox: Inbox,
        handle: Handle,
        ack: Callable[[Incoming], None],
        command_topics: frozenset[str],
    ) -> None:
        self._inbox = inbox
        self._handle = handle
        self._ack = ack
        self._topics = command_topics
        self._queue: asyncio.Queue[tuple[int, str, bytes, bool]] = asyncio.Queue()
        self._queued: set[int] = set()

    async def load_journal(self) -> int:
        """Queue what the journal still holds from before a crash; returns how many."""
        pending = await asyncio.to_thread(self._inbox.pending)
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
        entry_id = await asyncio.to_thread(self._inbox.put, msg.topic, msg.payload)
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
            # Not in a `finally`: a command interrupted by shutdown stays in the
            # journal and is carried out at the next start.
            await self._handle(topic, payload, resumed)
            await asyncio.to_thread(self._inbox.done, entry_id)
            self._queued.discard(entry_id)
