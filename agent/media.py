"""The media cache in the running agent: one store, one downloader, one service.

Built once at start from the config and shared by everything that needs media:
the schedule (prefetch over the horizon), alerts, `media.prefetch`, the heartbeat
and the players (which only ever get a verified file through `path_for`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.cache.download import Downloader
from agent.cache.service import CacheService
from agent.cache.store import STATS_MAX_AGE_S, MediaCache
from agent.config import Config
from agent.dispatch import Dispatcher, Outcome, Result
from agent.model import MediaPrefetch, MediaRef, ScheduleItem
from agent.protocol import Command
from agent.reporter import Reporter
from agent.scheduler import upcoming_media

MiB = 1024 * 1024
AfterPrefetch = Callable[[list[MediaRef]], Awaitable[None]]


class MediaSide:
    def __init__(self, cfg: Config, reporter: Reporter) -> None:
        self._tz = cfg.device.timezone
        self._horizon = timedelta(hours=cfg.cache.horizon_h)
        self.cache = MediaCache(
            cfg.storage.dir / "cache", cfg.storage.cache_quota_mb * MiB, emit_event=reporter.emit
        )
        self._after_prefetch: AfterPrefetch | None = None
        self.service = CacheService(
            self.cache,
            Downloader(
                self.cache, max_parallel=cfg.cache.max_parallel, max_kbps=cfg.cache.max_kbps,
                # Commands name http(s) only (§5.1); file:// is the technician CLI's.
                allow_file=False, allow_private_hosts=cfg.cache.allow_private_hosts,
            ),
            horizon_h=cfg.cache.horizon_h,
            missing_warn_min=cfg.cache.missing_warn_min,
            scrub_mb_per_min=cfg.cache.scrub_mb_per_min,
        )

    async def start(self) -> None:
        await self.service.start()

    def tasks(self) -> list[asyncio.Task[None]]:
        """The cache's long-lived tasks, for the liveness registry."""
        return list(self.service.tasks)

    async def stop(self) -> None:
        await self.service.stop()
        await self.service.downloader.aclose()

    async def path_for(self, sha256: str) -> Path | None:
        return await self.service.path_for(sha256)

    def schedule_changed(self, items: tuple[ScheduleItem, ...]) -> None:
        """Prefetch (and pin) what the schedule needs over the horizon."""
        now = datetime.now(UTC)
        self.service.want(upcoming_media(items, self._tz, now, self._horizon))

    def alert_media(self, refs: tuple[MediaRef, ...]) -> None:
        now = datetime.now(UTC)
        self.service.want([(now, r) for r in refs], kind="alert")

    def heartbeat(self) -> dict[str, Any]:
        # A recent count will do (see STATS_MAX_AGE_S): no 5,000-file walk every beat.
        stats = self.cache.stats(max_age_s=STATS_MAX_AGE_S)
        return {"items": stats.items, "bytes": stats.bytes, "missing": self.service.missing_next()}

    def register(
        self, dispatcher: Dispatcher, *, after_prefetch: AfterPrefetch | None = None
    ) -> None:
        """`after_prefetch` gets the refs a `media.prefetch` cached, before its `done`
        ack: the outputs prepare them (decode audio), so an alert naming them later
        starts without decoding first."""
        self._after_prefetch = after_prefetch
        dispatcher.register("media.prefetch", self.media_prefetch)

    async def media_prefetch(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, MediaPrefetch)
        refs = cmd.args.media

        async def fetch() -> Result:
            report = await self.service.prefetch(refs)
            if self._after_prefetch is not None and report.ok:
                await self._after_prefetch(list(report.ok))
            if not report.failed:
                return Result(ok=True, detail=f"{len(report.ok)} file(s) cached")
            failed = [f"{ref.sha256[:12]}… {ref.url}: {why}" for ref, why in report.failed]
            return Result(
                ok=False,
                code="media_missing",
                detail=f"{len(report.failed)} of {len(refs)} not fetched",
                warnings=failed,
            )

        return Outcome(later=fetch())
