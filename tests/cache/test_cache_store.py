"""The store on a real disk: crash leftovers, corruption, pins, LRU and a full disk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.http_media import Behaviour, MediaServer
from support.media_cache import Events, files_under, make_ref, payload, run
from support.timing import until

from agent.cache.download import Downloader, FetchError
from agent.cache.store import STATS_MAX_AGE_S, MediaCache
from agent.model import MediaRef


def put(cache: MediaCache, body: bytes, tmp: Path) -> MediaRef:
    """Store `body` through the real publish path (file:// download)."""
    src = tmp / f"src-{len(list(tmp.iterdir()))}"
    src.write_bytes(body)
    ref = make_ref(src.as_uri(), body)

    async def go() -> None:
        d = Downloader(cache)
        try:
            await d.fetch(ref)
        finally:
            await d.aclose()

    run(go())
    return ref


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    return d


def flip_byte(path: Path, at: int) -> None:
    os.chmod(path, 0o644)
    with path.open("r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x80]))


def test_recover_keeps_durable_part_and_drops_junk(cache: MediaCache, src: Path) -> None:
    body = payload(200_000)
    ref = make_ref("http://127.0.0.1:9/x", body)
    pdir = cache.partial_dir
    # A partial whose first 65536 bytes were committed, plus garbage written after.
    (pdir / f"{ref.sha256}.part").write_bytes(body[:65536] + b"\0" * 5000)
    meta = {"ref": {"url": ref.url, "sha256": ref.sha256, "size": ref.size, "type": ref.type}}
    (pdir / f"{ref.sha256}.json").write_text(json.dumps({**meta, "durable": 65536}))
    # A partial without its sidecar, one of an object already stored, a stray temp.
    (pdir / f"{'b' * 64}.part").write_bytes(b"junk")
    stored = put(cache, payload(1000, seed=9), src)
    (pdir / f"{stored.sha256}.part").write_bytes(b"old")
    (pdir / f"{stored.sha256}.json").write_text(json.dumps({**meta, "durable": 0}))
    (pdir / ".x.json.tmp").write_bytes(b"half")

    assert cache.recover() == [ref]
    assert files_under(pdir) == [f"{ref.sha256}.json", f"{ref.sha256}.part"]
    assert (pdir / f"{ref.sha256}.part").stat().st_size == 65536


def test_flipped_byte_is_never_handed_out(tmp_path: Path, src: Path, events: Events) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 30, emit_event=events, reserve_bytes=0, trust_s=0)
    cache.recover()
    ref = put(cache, payload(100_000), src)
    assert cache.path_for(ref.sha256) is not None
    flip_byte(cache.object_path(ref.sha256), 5000)
    assert cache.path_for(ref.sha256) is None
    assert not cache.has(ref.sha256)
    assert [(lvl, code) for lvl, code, _ in events.items] == [("error", "cache_corrupt")]
    assert ref.sha256 in events.items[0][2]
    assert len(list(cache.quarantine_dir.iterdir())) == 1


def test_verify_all_quarantines_only_the_bad_one(cache: MediaCache, src: Path) -> None:
    good = put(cache, payload(50_000, seed=1), src)
    bad = put(cache, payload(50_000, seed=2), src)
    flip_byte(cache.object_path(bad.sha256), 10)
    report = cache.verify_all()
    assert report.ok == [good.sha256] and report.corrupt == [bad.sha256]
    assert cache.has(good.sha256) and not cache.has(bad.sha256)


def test_eviction_is_lru_among_unpinned_and_spares_pins(
    tmp_path: Path, src: Path, events: Events
) -> None:
    cache = MediaCache(tmp_path / "c", 350_000, emit_event=events, reserve_bytes=0)
    cache.recover()
    a, b, c = (put(cache, payload(100_000, seed=i), src) for i in range(3))
    os.utime(cache.object_path(a.sha256), (1000, 1000))  # oldest use
    os.utime(cache.object_path(b.sha256), (2000, 2000))
    os.utime(cache.object_path(c.sha256), (3000, 3000))
    cache.touch(a.sha256)  # a was just played: now the youngest
    cache.set_pins("alert", [c])
    assert cache.evict_for(100_000)  # 300k used + 100k > 350k: one must go
    assert [cache.has(r.sha256) for r in (a, b, c)] == [True, False, True]
    # Everything left is pinned or needed: nothing more can be freed.
    cache.set_pins("schedule", [a])
    assert not cache.evict_for(200_000)
    assert cache.has(a.sha256) and cache.has(c.sha256)
    # Pins are on disk for the technician CLI and the next boot.
    again = MediaCache(tmp_path / "c", 350_000, emit_event=events)
    again.load_pins()
    assert again.pinned() == {a.sha256, c.sha256}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs: the cache's disk really fills up."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_gives_an_event_not_a_crash(
    tiny_disk: Path, server: MediaServer, events: Events
) -> None:
    cache = MediaCache(tiny_disk / "cache", 1 << 30, emit_event=events, reserve_bytes=0)
    cache.recover()
    small = payload(200_000, seed=1)
    big = payload(2_000_000, seed=2)
    small_ref = make_ref(server.add("/small", small), small)
    big_ref = make_ref(server.add("/big", big), big)

    async def go() -> None:
        d = Downloader(cache, attempts=2, backoff_s=0.01)
        try:
            with pytest.raises(FetchError) as info:
                await d.fetch(big_ref)
            assert "disk full" in info.value.reason
            assert (await d.fetch(small_ref)).read_bytes() == small  # still works
        finally:
            await d.aclose()

    run(go())
    assert [(lvl, code) for lvl, code, _ in events.items] == [("error", "disk_full")]
    assert not cache.has(big_ref.sha256)
    assert server.served("/big") == []  # checked before downloading, not after


def test_disk_filled_by_someone_else_mid_download(
    tiny_disk: Path, server: MediaServer, events: Events
) -> None:
    cache = MediaCache(tiny_disk / "cache", 1 << 30, emit_event=events, reserve_bytes=0)
    cache.recover()
    body = payload(600_000, seed=3)
    ref = make_ref(server.add("/m", body, Behaviour(rate_bps=1_000_000)), body)

    def hog() -> None:
        # Another writer takes every byte left after our free-space check passed.
        with contextlib.suppress(OSError), (tiny_disk / "hog").open("wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()

    async def go() -> FetchError:
        d = Downloader(cache, attempts=1, commit_bytes=64 * 1024)
        try:
            task = asyncio.create_task(d.fetch(ref))
            # Mid-download: its free-space check passed and bytes are being written.
            await until(
                lambda: any(p.stat().st_size > 0 for p in cache.partial_dir.glob("*.part")),
                "the download writing",
            )
            await asyncio.to_thread(hog)
            with pytest.raises(FetchError) as info:
                await task
            return info.value
        finally:
            await d.aclose()

    err = run(go())
    assert "disk full" in err.reason
    assert "disk_full" in events.codes()
    assert not cache.has(ref.sha256)


def test_heartbeat_counts_follow_every_change_the_cache_makes(
    cache: MediaCache, src: Path
) -> None:
    """The heartbeat may reuse a recent count (no walk of every file each beat), but a
    file this cache stores, quarantines or evicts shows in the very next count; a file
    removed behind its back shows at once where the quota is decided (a fresh walk)."""
    beat = cache.stats(max_age_s=STATS_MAX_AGE_S)
    a = put(cache, payload(1000, seed=1), src)
    after_store = cache.stats(max_age_s=STATS_MAX_AGE_S)
    assert (after_store.items, after_store.bytes) == (beat.items + 1, beat.bytes + 1000)
    b = put(cache, payload(2000, seed=2), src)
    assert cache.stats(max_age_s=STATS_MAX_AGE_S).items == beat.items + 2
    cache.quarantine(a.sha256)
    assert cache.stats(max_age_s=STATS_MAX_AGE_S).bytes == beat.bytes + 2000
    path = cache.object_path(b.sha256)
    os.chmod(path, 0o644)
    path.unlink()  # a technician's rm
    assert cache.stats().items == beat.items
    assert cache.stats(max_age_s=STATS_MAX_AGE_S).items == beat.items
