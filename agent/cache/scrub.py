"""Background scrub: re-hash stored files slowly to find SD-card rot before a slot does.

SD cards in hot cabinets flip bits. The scrubber reads every object at
`scrub_mb_per_min` (default 20 MB/min: a 2 GB cache every ~100 min, a few
percent of one core on a Pi) and quarantines any whose bytes no longer match
their name; the service then fetches it again.

It walks objects in hash order and keeps its place in a small cursor file, so a
device that loses power every evening still covers the whole cache over the days
rather than re-reading the same first files after every boot.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from agent.cache.digest import is_sha256
from agent.cache.ratelimit import AsyncLimiter
from agent.cache.store import MediaCache

BLOCK = 256 * 1024


class Scrubber:
    def __init__(
        self,
        cache: MediaCache,
        *,
        mb_per_min: float,
        on_corrupt: Callable[[str], None] = lambda sha: None,
        idle_s: float = 60.0,
        cursor_path: Path | None = None,
        cursor_every_s: float = 60.0,
    ) -> None:
        if mb_per_min <= 0:
            raise ValueError(f"scrub_mb_per_min must be > 0, got {mb_per_min}")
        rate = mb_per_min * (1 << 20) / 60
        self._cache = cache
        self._limiter = AsyncLimiter(rate, BLOCK)
        self._on_corrupt = on_corrupt
        self._idle_s = idle_s
        self._cursor_path = cursor_path
        # A cache of small slides would otherwise rewrite the cursor several times a
        # second; losing up to a minute of scrub position costs nothing.
        self._cursor_every_s = cursor_every_s
        self._cursor_saved_at = float("-inf")
        self.cursor = self._load_cursor()  # the last hash checked ("" = from the start)
        self.checked = 0
        self.corrupt = 0

    async def check(self, sha: str) -> bool | None:
        """Re-hash one object at the scrub rate; quarantine it if it no longer matches.

        Returns True (matches), False (quarantined) or None (gone meanwhile).
        """
        path = self._cache.object_path(sha)
        h = hashlib.sha256()
        try:
            f = await asyncio.to_thread(path.open, "rb", 0)
        except FileNotFoundError:
            return None
        try:
            while True:
                block = await asyncio.to_thread(f.read, BLOCK)
                if not block:
                    break
                h.update(block)
                await self._limiter.take(len(block))
        finally:
            f.close()
        self.checked += 1
        if h.hexdigest() == sha:
            self._cache.mark_verified(sha)
            return True
        self.corrupt += 1
        self._cache.quarantine(sha, reason="scrub: content no longer matches its sha256")
        self._on_corrupt(sha)
        return False

    async def run(self) -> None:
        """Scrub forever, in hash order from where the last boot left off.

        A pass (one round of the whole cache) takes at least `idle_s`, so a few
        small files are not re-hashed hundreds of times a second.
        """
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            todo = sorted(o.sha256 for o in self._cache.objects())
            # Those after the cursor first; the rest of the round wraps to the start.
            split = bisect.bisect_right(todo, self.cursor)
            for sha in todo[split:] + todo[:split]:
                await self.check(sha)
                self._save_cursor(sha)
            await asyncio.sleep(max(0.0, self._idle_s - (loop.time() - started)))

    def _load_cursor(self) -> str:
        if self._cursor_path is None:
            return ""
        try:
            text = self._cursor_path.read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            return ""  # no cursor, or a corrupt one: starting over costs one pass
        return text if is_sha256(text) else ""

    def _save_cursor(self, sha: str) -> None:
        self.cursor = sha
        now = time.monotonic()
        if self._cursor_path is None or now - self._cursor_saved_at < self._cursor_every_s:
            return
        self._cursor_saved_at = now
        # No fsync: a lost cursor costs re-reading a few files, not correctness,
        # and an SD card's write budget is better spent on proofs.
        tmp = self._cursor_path.with_name(self._cursor_path.name + ".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(sha + "\n", "ascii")
            os.replace(tmp, self._cursor_path)
