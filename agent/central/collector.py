"""`tcs-central collect`: every device report from the broker into the database.

Two tasks per connection: the reader takes messages off the socket (stamping the
console's receive time), the writer stores whatever has queued up as one batch
in one transaction and only then sends the QoS 1 PUBACKs, in arrival order. A
collector killed at any point loses nothing: an unacknowledged message stays in
the broker's persistent session and comes again; one stored but not yet acked
comes again and is ignored by the idempotent inserts (agent/central/store.py).
Several collectors with the same `share_group` split a province between them
(MQTT 5 shared subscription).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from agent.central import store
from agent.central.acl import DEVICE_REPORTS
from agent.central.ingest import IngestContext, parse
from agent.central.mqtt import ack, device_topic, make_client
from agent.central.retention import RetentionPolicy, prune
from agent.central.settings import BrokerSettings

log = logging.getLogger(__name__)

MAX_BATCH = 2000
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    mid: int
    received_ms: int


def subscriptions(share_group: str) -> list[tuple[str, int]]:
    return [(f"$share/{share_group}/{device_topic('+', leaf)}", 1) for leaf in DEVICE_REPORTS]


class Collector:
    def __init__(self, broker: BrokerSettings, engine: Engine, ctx: IngestContext, *,
                 share_group: str, session_expiry_s: int, policy: RetentionPolicy,
                 clock: Callable[[], float] = time.time) -> None:
        self._broker = broker
        self._engine = engine
        self._ctx = ctx
        self._group = share_group
        self._expiry = session_expiry_s
        self._policy = policy
        self._clock = clock
        self.stored = 0  # messages committed (tests and the bench read it)
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Collect until cancelled, reconnecting with full-jitter back-off (1 s to 60 s)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._pruner())
            while True:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(aiomqtt.MqttError),
                    wait=wait_random_exponential(multiplier=1, max=60),
                    before_sleep=lambda rs: log.warning(
                        "broker %s: %s; retrying", self._broker.url,
                        rs.outcome.exception() if rs.outcome else "?"),
                ):
                    with attempt:
                        await self._session()
                await asyncio.sleep(random.uniform(0.0, 1.0))

    async def _session(self) -> None:
        queue: asyncio.Queue[Received] = asyncio.Queue()
        client = make_client(self._broker, session_expiry_s=self._expiry)
        async with client:
            await client.subscribe(subscriptions(self._group))
            log.info("collecting from %s as %s (group %s)", self._broker.url,
                     self._broker.client_id, self._group)
            self.subscribed.set()
            writer = asyncio.create_task(self._writer(client, queue))
            try:
                async for message in client.messages:
                    payload = message.payload
                    raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
                    queue.put_nowait(Received(str(message.topic), raw, int(message.qos),
                                              int(message.mid), int(self._clock() * 1000)))
                    if writer.done():
                        writer.result()  # a database failure ends the session loudly
            finally:
                self.subscribed.clear()
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer

    async def _writer(self, client: aiomqtt.Client, queue: asyncio.Queue[Received]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            rows: list[store.Row] = []
            hits: list[store.BucketHit] = []
            for msg in batch:
                parsed = parse(msg.topic, msg.payload, msg.received_ms, self._ctx)
                rows.extend(parsed.rows)
                hits.extend(parsed.hits)
                if parsed.problem:
                    log.warning("%s", parsed.problem)
            await self._store(rows, hits)
            self.stored += len(batch)
            for msg in batch:  # only now: the batch is committed
                ack(client, msg.mid, msg.qos)

    async def _store(self, rows: list[store.Row], hits: list[store.BucketHit]) -> None:
        """Write one batch, retrying while the database is unreachable.

        Meanwhile nothing is acknowledged, so the broker keeps the messages (and,
        its in-flight window full, stops sending more): an outage delays, never loses.
        """
        delay = 1.0
        while True:
            try:
                await asyncio.to_thread(store.write, self._engine, rows, hits)
                return
            except OperationalError as exc:
                log.warning("database unavailable (%s); retrying in %.0f s",
                            str(exc).splitlines()[0], delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _pruner(self) -> None:
        while True:
            try:
                removed = await asyncio.to_thread(prune, self._engine, self._policy,
                                                  int(self._clock() * 1000))
                if removed:
                    log.info("retention: removed %s", removed)
            except Exception:
                log.exception("retention pass failed; retrying in an hour")
            await asyncio.sleep(PRUNE_EVERY_S)
