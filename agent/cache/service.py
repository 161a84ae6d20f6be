"""The cache's background life in the agent: horizon prefetch, warnings, scrub, resume.

The scheduler (and the alert engine) call `want(needs, kind=…)` whenever what
they will play changes; the service pins that media, fetches what is missing
(earliest need first, alerts and fallback before the schedule), retries failures
with jittered back-off, warns (`media_missing`) when an item is due within
`missing_warn_min` and its media is still not here, and keeps the scrubber going.
The heartbeat reads `missing_next()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.cache import horizon
from agent.cache.digest import hash_file, is_sha256
from agent.cache.download import Downloader, PrefetchReport
from agent.cache.scrub import Scrubber
from agent.cache.store import MediaCache
from agent.model import MediaRef
from agent.timeutil import rfc3339_ms

log = logging.getLogger(__name__)

SCHEDULE = "schedule"
LAST_CALL = timedelta(minutes=5)
# Where the scrubber keeps its place across boots (in the cache root, beside the objects).
SCRUB_CURSOR = ".scrub-cursor"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CacheService:
    def __init__(
        self,
        cache: MediaCache,
        downloader: Downloader,
        *,
        horizon_h: float = 48,
        missing_warn_min: float = 30,
        scrub_mb_per_min: float = 20,
        now: Callable[[], datetime] = _utcnow,
        tick_s: float = 60.0,
        retry_s: tuple[float, float] = (60.0, 1800.0),
        scrub_idle_s: float = 60.0,
    ) -> None:
        self.cache = cache
        self.downloader = downloader
        self._horizon = timedelta(hours=horizon_h)
        self._warn = timedelta(minutes=missing_warn_min)
        self._now = now
        self._tick_s = tick_s
        self._retry_s = retry_s
        self._needs: dict[str, list[horizon.Need]] = {}
        self._resume: list[MediaRef] = []
        self._failures: dict[str, tuple[int, float, str]] = {}  # sha -> (count, retry_at, why)
        self._warned: set[tuple[datetime, str]] = set()
        self._wake = asyncio.Event()
        self._batch: asyncio.Task[None] | None = None
        self._batch_refs: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # Told which media a fetch stored (the outputs prepare them at once); set by
        # the service once the outputs exist.
        self.on_fetched: Callable[[list[MediaRef]], None] | None = None
        self.scrubber = Scrubber(
            cache,
            mb_per_min=scrub_mb_per_min,
            on_corrupt=self._corrupt,
            idle_s=scrub_idle_s,
            cursor_path=cache.root / SCRUB_CURSOR,
        )

    # ---- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Clean up after a crash, then run the watcher and the scrubber."""
        self._resume = self.cache.recover()
        self._tasks = [
            asyncio.create_task(self._watch(), name="cache-watch"),
            asyncio.create_task(self.scrubber.run(), name="cache-scrub"),
        ]

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The watcher and the scrubber (long-lived; the agent's liveness watches them)."""
        return list(self._tasks)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._batch] if self._batch else [])]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        self._batch = None
        await self.downloader.aclose()

    # ---- what callers use --------------------------------------------------------

    def want(self, needed: Iterable[horizon.Need], *, kind: str = SCHEDULE) -> None:
        """Replace what `kind` will need. For "schedule", only the horizon is pinned
        and fetched; for any other kind ("alert", "fallback") all of it is."""
        self._needs[kind] = [(horizon.aware(w), r) for w, r in needed]
        self._wake.set()

    def missing_next(self, hours: float = 24) -> int:
        """Heartbeat `cache.missing`: distinct media needed in the next `hours`, not stored."""
        now = self._now()
        needs = [n for kind in self._needs.values() for n in kind]
        return horizon.count_missing(needs, now, timedelta(hours=hours), self.cache.has)

    async def prefetch(self, refs: Iterable[MediaRef]) -> PrefetchReport:
        """`media.prefetch`: fetch now; the report gives the ack (done / failed + refs)."""
        return await self.downloader.prefetch(refs)

    async def path_for(self, sha256: str) -> Path | None:
        """For players: the verified object, hashed off the event loop; None if absent
        or corrupt (corrupt ones are quarantined and fetched again)."""
        if not is_sha256(sha256) or not self.cache.has(sha256):
            return None
        path = self.cache.object_path(sha256)
        if not self.cache.is_fresh(sha256):
            try:
                digest, _ = await asyncio.to_thread(hash_file, path)
            except FileNotFoundError:
                return None
            if digest != sha256:
                self.cache.quarantine(sha256, reason="content no longer matches its sha256")
                self._corrupt(sha256)
                return None
            self.cache.mark_verified(sha256)
        self.cache.touch(sha256)
        return path

    async def refresh(self) -> None:
        """Pin, start fetching what is missing, emit due warnings. Called by the watcher."""
        now = self._now()
        wanted: list[MediaRef] = []
        for kind, needs in sorted(self._needs.items(), key=lambda kv: kv[0] == SCHEDULE):
            refs = (
                horizon.horizon_refs(needs, now, self._horizon)
                if kind == SCHEDULE
                else horizon.by_first_need(needs)
            )
            self.cache.set_pins(kind, refs)
            wanted.extend(refs)
        wanted.extend(self._resume)
        mono = time.monotonic()
        todo: list[MediaRef] = []
        seen: set[str] = set()
        for ref in wanted:
            if ref.sha256 in seen or self.cache.has(ref.sha256):
                continue
            seen.add(ref.sha256)
            fail = self._failures.get(ref.sha256)
            if fail is None or fail[1] <= mono:
                todo.append(ref)
        if todo and (self._batch is None or self._batch.done()):
            self._batch_refs = {r.sha256 for r in todo}
            self._batch = asyncio.create_task(self._fetch(todo), name="cache-fetch")
        self._warn_due(now)

    async def settle(self) -> None:
        """Wait until the current fetch batch (if any) has finished (tests, shutdown)."""
        while self._batch is not None and not self._batch.done():
            await asyncio.wait({self._batch})

    def last_failure(self, sha256: str) -> str | None:
        fail = self._failures.get(sha256)
        return fail[2] if fail else None

    # ---- internals ---------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            self._wake.clear()
            await self.refresh()
            timeout = self._tick_s
            needs = [n for kind in self._needs.values() for n in kind]
            nxt = horizon.next_warning_at(needs, self._now(), self._warn)
            if nxt is not None:
                timeout = max(0.05, min(timeout, (nxt - self._now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _fetch(self, todo: list[MediaRef]) -> None:
        report = await self.downloader.prefetch(todo)
        for ref in report.ok:
            self._failures.pop(ref.sha256, None)
        if report.ok and self.on_fetched is not None:
            try:
                self.on_fetched(list(report.ok))
            except Exception:  # a listener's fault must not stop the cache's watcher
                log.exception("on_fetched listener failed")
        self._resume = [r for r in self._resume if not self.cache.has(r.sha256)]
        for ref, why in report.failed:
            count = self._failures.get(ref.sha256, (0, 0.0, ""))[0] + 1
            lo, hi = self._retry_s
            # Jittered so devices that failed together do not retry together, but
            # at least half the step so a broken link is not hammered.
            delay = random.uniform(0.5, 1.0) * min(hi, lo * 2 ** (count - 1))
            self._failures[ref.sha256] = (count, time.monotonic() + delay, why)
            if count == 1:
                self.cache.event(
                    "warning",
                    "download_failed",
                    f"media {ref.sha256} from {ref.url}: {why}; will retry",
                )
        self._wake.set()

    def _warn_due(self, now: datetime) -> None:
        needs = [n for kind in self._needs.values() for n in kind]
        self._warned = {k for k in self._warned if k[0] >= now}
        busy = self._batch_refs if self._batch is not None and not self._batch.done() else set()
        for when, ref in horizon.due_soon_missing(needs, now, self._warn, self.cache.has):
            key = (when, ref.sha256)
            if key in self._warned:
                continue
            if ref.sha256 in busy and ref.sha256 not in self._failures and when - now > LAST_CALL:
                # Its first download is running: warn only if it fails or is
                # still running at the last call, not whenever a schedule
                # arrives less than 30 min ahead.
                continue
            self._warned.add(key)
            minutes = max(0, round((when - now).total_seconds() / 60))
            why = self.last_failure(ref.sha256) or "download pending"
            self.cache.event(
                "warning",
                "media_missing",
                f"media {ref.sha256} needed at {rfc3339_ms(when)} (in {minutes} min) "
                f"is not cached: {why}",
            )

    def _corrupt(self, sha256: str) -> None:
        self._failures.pop(sha256, None)  # fetch it again right away if it is wanted
        self._wake.set()
