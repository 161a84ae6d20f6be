"""Downloads against a real HTTP server that misbehaves like the field does."""

from __future__ import annotations

import asyncio
import itertools
import stat
from pathlib import Path

import httpx
import pytest
from support.http_media import Behaviour, MediaServer, corrupt
from support.media_cache import files_under, make_ref, payload, run
from support.timing import until

from agent.cache.download import Downloader, FetchError
from agent.cache.store import MediaCache
from agent.model import MediaRef

SIZE = 300_000
CHUNK = 64 * 1024


def quick_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(2.0, read=0.5), follow_redirects=True)


def downloader(cache: MediaCache, **kw: object) -> Downloader:
    opts: dict[str, object] = {
        "client_factory": quick_client,
        "attempts": 4,
        "backoff_s": 0.02,
        "backoff_max_s": 0.1,
        "commit_bytes": CHUNK,
    }
    opts.update(kw)
    return Downloader(cache, **opts)  # type: ignore[arg-type]


async def fetch(cache: MediaCache, ref: MediaRef, **kw: object) -> Path:
    d = downloader(cache, **kw)
    try:
        return await d.fetch(ref)
    finally:
        await d.aclose()


def fetch_error(cache: MediaCache, ref: MediaRef, **kw: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(fetch(cache, ref, **kw))
    return info.value


def assert_not_stored(cache: MediaCache, ref: MediaRef) -> None:
    assert not cache.has(ref.sha256)
    assert cache.path_for(ref.sha256) is None
    # Nothing left that could later be mistaken for the file, either.
    assert not list(cache.partial_dir.glob(f"{ref.sha256}.*"))


def test_stores_verified_file_named_by_hash_only(server: MediaServer, cache: MediaCache) -> None:
    body = payload(SIZE)
    ref = make_ref(server.add("/m/..%2F..%2Fetc%2Fpasswd.mp3", body), body)
    path = run(fetch(cache, ref))
    assert path == cache.root / ref.sha256[:2] / ref.sha256
    assert path.read_bytes() == body
    assert cache.path_for(ref.sha256) == path
    assert not stat.S_IMODE(path.stat().st_mode) & 0o222  # read-only
    assert files_under(cache.root) == [f"{ref.sha256[:2]}/{ref.sha256}"]


def test_wrong_bytes_never_enter_the_store(server: MediaServer, cache: MediaCache) -> None:
    body = payload(SIZE)
    ref = make_ref(server.url("/x"), body)
    server.add("/x", corrupt(body, 1234))
    err = fetch_error(cache, ref)
    assert "wrong content" in err.reason and ref.sha256 in err.reason
    assert_not_stored(cache, ref)
    assert len(server.served("/x")) == 1  # wrong bytes are not retried in a loop


def test_longer_body_than_announced_size_is_rejected(
    server: MediaServer, cache: MediaCache
) -> None:
    body = payload(SIZE)
    ref = make_ref(server.url("/long"), body)
    server.add("/long", body + b"extra")
    err = fetch_error(cache, ref)
    assert "wrong size" in err.reason and str(SIZE) in err.reason
    assert_not_stored(cache, ref)


def test_lying_content_length_is_rejected_before_download(
    server: MediaServer, cache: MediaCache
) -> None:
    body = payload(SIZE)
    ref = make_ref(server.add("/lie", body, Behaviour(length=SIZE + 10)), body)
    err = fetch_error(cache, ref)
    assert "wrong size" in err.reason
    assert_not_stored(cache, ref)


def test_truncated_body_every_time_is_never_stored(server: MediaServer, cache: MediaCache) -> None:
    body = payload(SIZE)
    ref = make_ref(server.add("/cut", body, Behaviour(cut_after=100_000, ranges=False)), body)
    err = fetch_error(cache, ref)
    assert "gave up after 4 attempts" in err.reason
    assert not cache.has(ref.sha256)
    assert len(server.served("/cut")) == 4


def test_cut_mid_body_resumes_with_range_without_downloading_twice(
    server: MediaServer, cache: MediaCache
) -> None:
    body = payload(SIZE)
    ref = make_ref(server.add("/r", body, Behaviour(cut_after=123_457, cut_times=2)), body)
    path = run(fetch(cache, ref))
    assert path.read_bytes() == body
    reqs = server.served("/r")
    assert [r.range_start for r in reqs] == [None, 123_457, 2 * 123_457]
    assert server.bytes_sent("/r") == SIZE


def test_server_without_range_support_restarts_from_zero(
    server: MediaServer, cache: MediaCache
) -> None:
    body = payload(SIZE)
    ref = make_ref(
        server.add("/nr", body, Behaviour(cut_after=100_000, cut_times=1, ranges=False)), body
    )
    assert run(fetch(cache, ref)).read_bytes() == body
    assert [r.status for r in server.served("/nr")] == [200, 200]


def test_server_restart_mid_download_resumes(server: MediaServer, cache: MediaCache) -> None:
    body = payload(SIZE)
    # The first answer stalls after two chunks: the restart comes mid-body, whatever the
    # load (a throttled body could finish between two polls of a starved test loop).
    ref = make_ref(server.add("/slow", body, Behaviour(hang_after=2 * CHUNK)), body)

    async def scenario() -> Path:
        # Full jitter can spend a few attempts inside the outage; give it room so
        # the test is about resuming, not about how the dice fell.
        d = downloader(cache, attempts=30, backoff_s=0.2, backoff_max_s=0.4)
        task = asyncio.create_task(d.fetch(ref))
        # Mid-download: once a first chunk is durable (so there is something to resume).
        await until(lambda: any(p.durable > 0 for p in cache.partials()), "a durable chunk")
        server.set_behaviour("/slow", Behaviour(rate_bps=400_000))  # the restarted server
        await asyncio.to_thread(server.restart, 0.2)
        try:
            return await task
        finally:
            await d.aclose()

    assert run(scenario()).read_bytes() == body
    starts = [r.range_start for r in server.served("/slow")]
    assert starts[0] is None and len(starts) >= 2 and starts[-1] is not None and starts[-1] > 0


def test_http_404_fails_at_once(server: MediaServer, cache: MediaCache) -> None:
    body = payload(1000)
    ref = make_ref(server.url("/nothing-here"), body)
    err = fetch_error(cache, ref)
    assert err.reason.startswith("HTTP 404")
    assert len(server.served("/nothing-here")) == 1


def test_http_500_is_retried_then_succeeds(server: MediaServer, cache: MediaCache) -> None:
    body = payload(SIZE)
    ref = make_ref(server.add("/flaky", body, Behaviour(status=500, status_times=2)), body)
    assert run(fetch(cache, ref)).read_bytes() == body
    assert [r.status for r in server.served("/flaky")] == [500, 500, 200]


def test_http_500_forever_gives_a_clear_reason(server: MediaServer, cache: MediaCache) -> None:
    body = payload(1000)
    ref = make_ref(server.add("/down", body, Behaviour(status=500)), body)
    err = fetch_error(cache, ref)
    assert "HTTP 500" in err.reason and "4 attempts" in err.reason


def test_hanging_server_times_out(server: MediaServer, cache: MediaCache) -> None:
    body = payload(SIZE)
    ref = make_ref(server.add("/hang", body, Behaviour(hang_after=50_000)), body)
    err = fetch_error(cache, ref, attempts=2)
    # Given up by its read timeout, on each of its two attempts (a downloader that
    # waited for the server instead would never have returned: pytest-timeout).
    assert "timed out" in err.reason
    assert len(server.served("/hang")) == 2
    assert not cache.has(ref.sha256)


def test_file_url_from_usb_stick(tmp_path: Path, cache: MediaCache) -> None:
    body = payload(SIZE, seed=3)
    src = tmp_path / "usb" / "bản tin sáng.mp3"
    src.parent.mkdir()
    src.write_bytes(body)
    ref = make_ref(src.as_uri(), body)
    assert run(fetch(cache, ref)).read_bytes() == body
    # A file that is not what the command named is refused.
    other = make_ref(src.as_uri(), payload(SIZE, seed=4))
    err = fetch_error(cache, other)
    assert "wrong content" in err.reason
    assert not cache.has(other.sha256)


def test_concurrent_fetches_of_one_file_share_one_download(
    server: MediaServer, cache: MediaCache
) -> None:
    body = payload(SIZE)
    ref = make_ref(server.add("/shared", body, Behaviour(rate_bps=2_000_000)), body)

    async def scenario() -> list[Path]:
        d = downloader(cache)
        try:
            return list(await asyncio.gather(*(d.fetch(ref) for _ in range(3))))
        finally:
            await d.aclose()

    paths = run(scenario())
    assert len(set(paths)) == 1
    assert len(server.served("/shared")) == 1


def test_max_parallel_limits_simultaneous_downloads(server: MediaServer, cache: MediaCache) -> None:
    bodies = [payload(100_000, seed=i) for i in range(3)]
    refs = [
        make_ref(server.add(f"/p{i}", b, Behaviour(rate_bps=1_000_000)), b)
        for i, b in enumerate(bodies)
    ]

    async def scenario() -> None:
        d = downloader(cache, max_parallel=1)
        try:
            report = await d.prefetch(refs)
            assert [r.sha256 for r in report.ok] == [r.sha256 for r in refs]
        finally:
            await d.aclose()

    run(scenario())
    reqs = sorted(server.requests, key=lambda r: r.t_received)
    for a, b in itertools.pairwise(reqs):
        assert a.t_done is not None and b.t_received >= a.t_done - 0.01


def test_prefetch_reports_each_failure(server: MediaServer, cache: MediaCache) -> None:
    good = payload(10_000, seed=1)
    bad = payload(10_000, seed=2)
    ok_ref = make_ref(server.add("/good", good), good)
    missing_ref = make_ref(server.url("/gone"), bad)

    async def scenario() -> None:
        d = downloader(cache)
        try:
            report = await d.prefetch([ok_ref, missing_ref, ok_ref])
        finally:
            await d.aclose()
        assert report.ok == [ok_ref]
        assert [(r, why[:8]) for r, why in report.failed] == [(missing_ref, "HTTP 404")]

    run(scenario())
