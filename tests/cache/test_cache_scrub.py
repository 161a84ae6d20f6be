"""The scrubber keeps its place across reboots, so daily power cuts still cover the cache."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from support.media_cache import Events, payload, run

from agent.cache.scrub import Scrubber
from agent.cache.service import SCRUB_CURSOR
from agent.cache.store import MediaCache


class Recording(Scrubber):
    """A real scrubber that notes the order it checks objects in and, like a power
    cut, stops dead once `power_for` checks are complete."""

    def __init__(self, *args: object, power_for: int, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.seen: list[str] = []
        self.power_for = power_for
        self.cut = asyncio.Event()

    async def check(self, sha: str) -> bool | None:
        if len(self.seen) >= self.power_for:
            self.cut.set()
            await asyncio.Future()  # the lights go out here
        self.seen.append(sha)
        return await super().check(sha)


def fill(cache: MediaCache, tmp: Path, n: int) -> list[str]:
    shas = []
    for i in range(n):
        body = payload(4096, seed=100 + i)
        sha = hashlib.sha256(body).hexdigest()
        src = tmp / f"src{i}"
        src.write_bytes(body)
        cache.publish(sha, src)
        shas.append(sha)
    return sorted(shas)


async def scrub_until_cut(scrubber: Recording) -> None:
    task = asyncio.create_task(scrubber.run())
    try:
        await scrubber.cut.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make(cache: MediaCache, cursor: Path, power_for: int) -> Recording:
    # cursor_every_s=0: every check is saved, so the cut point is exact.
    return Recording(
        cache, mb_per_min=6000, idle_s=0.01, cursor_path=cursor, cursor_every_s=0,
        power_for=power_for,
    )  # fmt: skip


def test_scrub_resumes_after_a_reboot_where_it_stopped(tmp_path: Path, events: Events) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 30, emit_event=events, reserve_bytes=0)
    shas = fill(cache, tmp_path, 5)
    cursor = cache.root / SCRUB_CURSOR

    first = make(cache, cursor, power_for=2)
    run(scrub_until_cut(first))
    assert first.seen == shas[:2]
    assert cursor.read_text().strip() == shas[1]

    # "Power cut": a new scrubber on the same cache picks up after the cursor
    # instead of at the first object, and wraps round to finish the pass.
    second = make(cache, cursor, power_for=5)
    run(scrub_until_cut(second))
    assert second.seen == shas[2:] + shas[:2]
    assert second.checked == 5 and second.corrupt == 0


def test_scrub_with_a_corrupt_cursor_starts_over(tmp_path: Path, events: Events) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 30, emit_event=events, reserve_bytes=0)
    shas = fill(cache, tmp_path, 3)
    cursor = cache.root / SCRUB_CURSOR
    cursor.write_bytes(b"\xff\x00garbage from a dying card")
    scrubber = make(cache, cursor, power_for=3)
    run(scrub_until_cut(scrubber))
    assert scrubber.seen == shas
    assert cursor.read_text().strip() == shas[-1]
    # The cursor is not an object: the store does not count it.
    assert cache.stats().items == 3


def test_scrub_cursor_is_not_rewritten_for_every_small_file(tmp_path: Path, events: Events) -> None:
    # SD-card wear: a pass over many small slides saves its place about once a minute.
    cache = MediaCache(tmp_path / "c", 1 << 30, emit_event=events, reserve_bytes=0)
    shas = fill(cache, tmp_path, 4)
    cursor = cache.root / SCRUB_CURSOR
    scrubber = Recording(cache, mb_per_min=6000, idle_s=0.01, cursor_path=cursor, power_for=4)
    run(scrub_until_cut(scrubber))
    assert scrubber.checked == 4
    assert cursor.read_text().strip() == shas[0]  # the first save, then none within 60 s
