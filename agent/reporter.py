"""Everything the province must eventually see goes through here into the outbox.

Acks, events and proofs are written durably first (agent/outbox.py) and only then
published, in order, with QoS 1; a record leaves the outbox only after the broker's
PUBACK. The pump never blocks the caller: callers wait for the disk, not the network.

A full or read-only card does not lose records: the database then lives in memory
(agent/db.py) and the outbox with it. Should the outbox fail for another reason (a
file found corrupt while running), records wait here in a bounded queue (`HELD_MAX`;
when it overflows the oldest non-proof goes first, proofs last, all counted in
`held_dropped`) and are put again before anything newer.

A record the broker refuses (PUBACK reason code >= 0x80, e.g. 0x87 when the ACL
denies the topic) stays in the outbox: records for that topic are held back and
retried with back-off (`REFUSED_RETRY_S` doubling to `REFUSED_RETRY_MAX_S`) while the
other topics flow on, and one `publish_refused` event names the topic and code per
cause (a new code, or a refusal after the topic worked again), not per record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import reports
from agent.db import StorageError
from agent.link import Link, NotConnected, PublishRefused
from agent.outbox import Outbox
from agent.reports import AckStatus, Level, Topics
from agent.timeutil import rfc3339_ms

log = logging.getLogger(__name__)

# In-flight window: MQTT keeps order on one connection, so several PUBACKs may be
# outstanding at once without reordering; this is what makes a backlog of days drain
# in seconds instead of one round trip per record.
WINDOW = 16
# Records held in memory when even the outbox cannot take them (see module docstring).
HELD_MAX = 2000
REFUSED_RETRY_S = 2.0
REFUSED_RETRY_MAX_S = 60.0


class _Refusal:
    """One topic the broker refuses: when to try again, and what was reported."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.delay = REFUSED_RETRY_S
        self.retry_at = time.monotonic() + self.delay


class Reporter:
    def __init__(
        self,
        outbox: Outbox,
        topics: Topics,
        device_key: Ed25519PrivateKey,
        tz: tzinfo,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._topics = topics
        self._key = device_key
        self._tz = tz
        self._clock = clock
        self._wake = asyncio.Event()
        self._last_unparsed_ack = 0.0
        self._pending: set[asyncio.Task[None]] = set()
        self._held: deque[tuple[str, str, bytes]] = deque()
        self._flushing = asyncio.Lock()  # one flusher at a time: no record put twice
        self.held_dropped = 0  # records lost because the held queue overflowed
        self.proofs_dropped = 0  # proofs the in-memory outbox dropped over its quota
        self._refused: dict[str, _Refusal] = {}  # topic -> current refusal

    def now(self) -> str:
        return rfc3339_ms(self._clock(), self._tz)

    # -- producers ------------------------------------------------------------------

    async def ack(
        self,
        *,
        jti: str | None,
        cmd: str | None,
        status: AckStatus,
        code: str | None = None,
        detail: str | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        if jti is None and cmd is None:
            # §6.3: acks for payloads that cannot be parsed at all go out at most once
            # a second, so a flood of garbage cannot fill the outbox or the uplink.
            now = time.monotonic()
            if now - self._last_unparsed_ack < 1.0:
                log.info("unparseable command dropped without ack (rate limit): %s", detail)
                return
            self._last_unparsed_ack = now
        payload = reports.ack_payload(
            jti=jti,
            cmd=cmd,
            status=status,
            at=self.now(),
            code=code,
            detail=detail,
            warnings=warnings,
        )
        await self._put("ack", self._topics.ack, payload)

    async def event(self, level: Level, code: str, detail: str) -> None:
        log.log(
            logging.ERROR
            if level == "error"
            else logging.WARNING
            if level == "warning"
            else logging.INFO,
            "event %s: %s",
            code,
            detail,
        )
        payload = reports.event_payload(at=self.now(), level=level, code=code, detail=detail)
        await self._put("event", self._topics.event, payload)

    def emit(self, level: str, code: str, detail: str) -> None:
        """Synchronous event sink for subsystems that take an `emit_event` callback
        (cache, audio engine). Must be called on the event loop's thread."""
        lvl: Level = level if level in ("info", "warning", "error") else "error"  # type: ignore[assignment]
        task = asyncio.get_running_loop().create_task(self.event(lvl, code, detail))
        self._pending.add(task)  # held until written, or the loop may drop it mid-way
        task.add_done_callback(self._pending.discard)

    async def proof(self, record: dict[str, Any]) -> None:
        token = reports.proof_token(self._key, self._topics.device_id, record)
        await self._put("proof", self._topics.proof, token)

    async def _put(self, kind: str, topic: str, payload: bytes) -> None:
        self._held.append((kind, topic, payload))
        if len(self._held) > HELD_MAX:
            self._drop_one_held()
        await self._flush_held()
        self._wake.set()

    def _drop_one_held(self) -> None:
        # The head may be in flight to the outbox right now: never drop that one.
        first = 1 if self._flushing.locked() else 0
        victim = next(
            (i for i in range(first, len(self._held)) if self._held[i][0] != "proof"), first
        )
        del self._held[victim]
        self.held_dropped += 1
        log.critical("record queue in memory full: %d record(s) dropped", self.held_dropped)

    async def _flush_held(self) -> None:
        """Put what waits in memory into the outbox, oldest first; stop at a failure."""
        async with self._flushing:
            await self._flush_held_locked()

    async def _flush_held_locked(self) -> None:
        while self._held:
            kind, topic, payload = self._held[0]
            try:
                result = await asyncio.to_thread(self._outbox.put, kind, topic, payload)
            except StorageError as exc:
                log.critical("outbox unavailable, %d record(s) wait in memory: %s",
                             len(self._held), exc)
                return
            self._held.popleft()
            await self._after_put(kind, result.stored, result.dropped, result.dropped_proofs)

    async def _after_put(self, kind: str, stored: bool, dropped: int, dropped_proofs: int) -> None:
        if not stored:
            # Only proofs fill the outbox: this non-proof record was dropped instead.
            log.warning("outbox full of proofs; %s record not kept", kind)
            return
        if not dropped:
            return
        self.proofs_dropped += dropped_proofs
        # Raised after the put so the event itself is not what gets dropped next.
        detail = f"outbox over quota: dropped {dropped} oldest records"
        if dropped_proofs:
            detail += (
                f", {dropped_proofs} of them proofs (storage unwritable, outbox in memory;"
                f" {self.proofs_dropped} proofs dropped so far)"
            )
        else:
            detail = f"outbox over quota: dropped {dropped} oldest non-proof records"
        payload = reports.event_payload(
            at=self.now(), level="warning", code="outbox_full", detail=detail
        )
        with contextlib.suppress(StorageError):
            await asyncio.to_thread(self._outbox.put, "event", self._topics.event, payload)

    def held(self) -> int:
        """Records waiting in memory for the outbox (normally 0)."""
        return len(self._held)

    # -- the pump -------------------------------------------------------------------

    async def pump(self, link: Link) -> None:
        """Drain the outbox whenever the link is up. Runs forever."""
        while True:
            await link.connected.wait()
            try:
                await self._flush_held()
                held_back = await self._drain(link)
                self._wake.clear()
                if await asyncio.to_thread(self._outbox.count) > held_back:
                    continue  # records arrived between the drain and the clear
            except NotConnected:
                await asyncio.sleep(0.2)
                continue
            except StorageError as exc:
                # Never let the outbox's trouble end the agent: try again shortly.
                log.error("outbox unreadable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            timeout = 30.0
            if self._refused:
                soonest = min(r.retry_at for r in self._refused.values())
                timeout = min(timeout, max(0.05, soonest - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _drain(self, link: Link) -> int:
        """Publish everything publishable; returns how many records were held back
        because the broker refuses their topic (they stay in the outbox)."""
        after = 0
        held_back = 0
        while True:
            batch = await asyncio.to_thread(self._outbox.pending, WINDOW, after)
            if not batch:
                return held_back
            after = batch[-1].id
            now = time.monotonic()
            send = [r for r in batch if not self._holding(r.topic, now)]
            held_back += len(batch) - len(send)
            results = await asyncio.gather(
                *(link.publish(r.topic, r.payload, qos=r.qos, retain=r.retain) for r in send),
                return_exceptions=True,
            )
            delivered: list[int] = []
            failure: BaseException | None = None
            refusals: list[PublishRefused] = []
            for record, res in zip(send, results, strict=True):
                if isinstance(res, PublishRefused):
                    refusals.append(res)  # kept in the outbox, retried later
                    held_back += 1
                    continue
                if isinstance(res, BaseException):
                    # Keep order: stop at the first failure, the rest is re-sent on the
                    # next connection (duplicates are allowed, loss is not).
                    failure = res
                    break
                delivered.append(record.id)
                self._refused.pop(record.topic, None)
            if delivered:
                # One transaction (one fsync) for the whole acknowledged batch.
                await asyncio.to_thread(self._outbox.delete_many, delivered)
            for refusal in refusals:
                await self._on_refused(refusal)
            if failure is not None:
                raise NotConnected(str(failure))

    def _holding(self, topic: str, now: float) -> bool:
        refusal = self._refused.get(topic)
        return refusal is not None and now < refusal.retry_at

    async def _on_refused(self, exc: PublishRefused) -> None:
        current = self._refused.get(exc.topic)
        if current is not None and current.code == exc.code:
            if time.monotonic() >= current.retry_at:  # first refusal of this round
                current.delay = min(current.delay * 2, REFUSED_RETRY_MAX_S)
                current.retry_at = time.monotonic() + current.delay
            return
        self._refused[exc.topic] = _Refusal(exc.code)
        await self.event(
            "error",
            "publish_refused",
            f"broker refused records on {exc.topic}: reason code 0x{exc.code:02x} "
            f"({exc.reason}); they are kept and retried (check the broker ACL)",
        )
