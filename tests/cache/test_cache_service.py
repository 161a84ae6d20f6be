"""The background service: horizon prefetch, quota under pressure, scrub, warnings."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from support.http_media import MediaServer
from support.media_cache import Events, make_ref, payload, run

from agent.cache.download import Downloader
from agent.cache.service import CacheService
from agent.cache.store import MediaCache
from agent.model import MediaRef

T0 = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def service(cache: MediaCache, clock: Clock, **kw: object) -> CacheService:
    d = Downloader(
        cache,
        client_factory=lambda: httpx.AsyncClient(timeout=2.0),
        attempts=2,
        backoff_s=0.01,
        backoff_max_s=0.02,
    )
    opts: dict[str, object] = {"now": clock, "tick_s": 0.05, "retry_s": (60.0, 60.0)}
    opts.update(kw)
    return CacheService(cache, d, **opts)  # type: ignore[arg-type]


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


async def running(svc: CacheService, body: Callable[[], Awaitable[None]]) -> None:
    await svc.start()
    try:
        await body()
    finally:
        await svc.stop()


def test_quota_holds_under_a_schedule_bigger_than_the_cache(
    tmp_path: Path, server: MediaServer, events: Events
) -> None:
    quota = 1_010_000  # five 200 kB files and a download's metadata
    cache = MediaCache(tmp_path / "c", quota, emit_event=events, reserve_bytes=0)
    bodies = {
        name: payload(200_000, seed=i)
        for i, name in enumerate(["A", "F", "0", "1", "2", "3", "4", "5"])
    }
    # A file from an old schedule, nothing references it any more.
    old_body = payload(200_000, seed=99)
    old = make_ref(server.add("/old", old_body), old_body)
    refs = {k: make_ref(server.add(f"/{k}", b), b) for k, b in bodies.items()}
    sched = [refs[k] for k in ("0", "1", "2", "3", "4", "5")]
    clock = Clock()
    svc = service(cache, clock)
    peak = 0

    async def body() -> None:
        nonlocal peak
        svc.want([(T0, old)])  # stored while it was still wanted
        await until(lambda: cache.has(old.sha256))
        svc.want([], kind="schedule")
        svc.want([(T0, refs["A"])], kind="alert")
        svc.want([(T0, refs["F"])], kind="fallback")
        svc.want([(T0 + timedelta(hours=i + 1), r) for i, r in enumerate(sched)])

        async def watch_usage() -> None:
            nonlocal peak
            while True:
                peak = max(peak, cache.used_bytes())
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch_usage())
        await until(lambda: all(cache.has(r.sha256) for r in sched[:3]))
        await svc.settle()
        # Hours pass: the first two programmes are long over, room for the next two.
        clock.now = T0 + timedelta(hours=8, minutes=30)
        svc._failures.clear()  # retry now instead of after the 60 s back-off
        svc.want([(T0 + timedelta(hours=i + 1), r) for i, r in enumerate(sched)])
        await until(lambda: cache.has(sched[3].sha256) and cache.has(sched[4].sha256))
        await svc.settle()
        watcher.cancel()

    run(running(svc, body))
    assert peak <= quota
    assert cache.has(refs["A"].sha256) and cache.has(refs["F"].sha256)
    assert not cache.has(old.sha256)  # evicted first: nothing referenced it
    assert not cache.has(sched[0].sha256)
    quota_events = [d for _, c, d in events.items if c == "disk_full"]
    assert quota_events and "cache quota full" in quota_events[0]
    assert "download_failed" in events.codes()


def test_flipped_file_is_scrubbed_quarantined_and_fetched_again(
    tmp_path: Path, server: MediaServer, events: Events
) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 30, emit_event=events, reserve_bytes=0)
    data = payload(300_000)
    ref = make_ref(server.add("/news.mp3", data), data)
    clock = Clock()
    svc = service(cache, clock, scrub_mb_per_min=600, scrub_idle_s=0.05)

    async def body() -> None:
        svc.want([(T0 + timedelta(hours=2), ref)])
        await until(lambda: cache.has(ref.sha256))
        path = cache.object_path(ref.sha256)
        os.chmod(path, 0o644)
        with path.open("r+b") as f:  # one bit rots on the card
            f.seek(123_456)
            b = f.read(1)
            f.seek(123_456)
            f.write(bytes([b[0] ^ 0x04]))
        await until(lambda: "cache_corrupt" in events.codes())
        await until(lambda: len(server.served("/news.mp3")) == 2 and cache.has(ref.sha256))
        await svc.settle()
        good = await svc.path_for(ref.sha256)
        assert good is not None and good.read_bytes() == data

    run(running(svc, body))
    assert len(list(cache.quarantine_dir.iterdir())) == 1


def test_missing_media_warns_before_its_slot_and_counts_in_heartbeat(
    tmp_path: Path, server: MediaServer, events: Events
) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 30, emit_event=events, reserve_bytes=0)
    ok_body = payload(10_000, seed=1)
    ok = make_ref(server.add("/ok", ok_body), ok_body)
    soon = make_ref(server.url("/gone-soon"), payload(10, seed=2))
    later = make_ref(server.url("/gone-later"), payload(10, seed=3))
    tomorrow = make_ref(server.url("/gone-tomorrow"), payload(10, seed=4))
    clock = Clock()
    svc = service(cache, clock)
    needs: list[tuple[datetime, MediaRef]] = [
        (T0 + timedelta(minutes=10), soon),
        (T0 + timedelta(minutes=20), ok),
        (T0 + timedelta(hours=2), later),
        (T0 + timedelta(hours=30), tomorrow),
    ]

    async def body() -> None:
        svc.want(needs)
        await until(lambda: cache.has(ok.sha256) and len(events.of("download_failed")) == 3)
        await svc.settle()
        await svc.refresh()
        assert svc.missing_next() == 2  # soon + later; tomorrow is beyond 24 h
        warned = events.of("media_missing")
        assert len(warned) == 1 and soon.sha256 in warned[0][2]
        assert "HTTP 404" in warned[0][2] and "in 10 min" in warned[0][2]
        # 95 minutes later the 2 h item enters its warning window: one more warning.
        clock.now = T0 + timedelta(minutes=95)
        await svc.refresh()
        assert [later.sha256 in d for _, _, d in events.of("media_missing")] == [False, True]

    run(running(svc, body))


def test_media_prefetch_reports_done_and_failed(
    tmp_path: Path, server: MediaServer, events: Events
) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 30, emit_event=events, reserve_bytes=0)
    a = payload(5000, seed=1)
    ok = make_ref(server.add("/a", a), a)
    bad = make_ref(server.add("/b", payload(5000, seed=2)), payload(5000, seed=3))
    svc = service(cache, Clock())

    async def body() -> None:
        report = await svc.prefetch([ok, bad])
        assert report.ok == [ok]
        assert [(r, why.split(":")[0]) for r, why in report.failed] == [(bad, "wrong content")]

    run(running(svc, body))


def test_listener_told_of_stored_media_once_it_can_be_read(
    tmp_path: Path, server: MediaServer, events: Events
) -> None:
    """What a schedule wants is announced as soon as it is stored (the outputs decode it
    then, not at their next look), and only then: the listener can read it at once."""
    body = payload(50_000, seed=5)
    ref = make_ref(server.add("/news", body), body)
    cache = MediaCache(tmp_path / "c", 10 << 20, emit_event=events)
    svc = service(cache, Clock())
    told: list[tuple[list[str], bool]] = []
    svc.on_fetched = lambda refs: told.append(
        ([r.sha256 for r in refs], all(cache.path_for(r.sha256) is not None for r in refs))
    )

    async def body_() -> None:
        svc.want([(T0 + timedelta(minutes=5), ref)])
        await until(lambda: bool(told))

    run(running(svc, body_))
    assert told == [([ref.sha256], True)]
