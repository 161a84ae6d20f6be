"""Background scrub: re-hash stored files slowly to find SD-card rot before a slot does.

SD cards in hot cabinets flip bits. The scrubber reads every object at
`scrub_mb_per_min` (default 20 MB/min: a 2 GB cache every ~100 min, a few
percent of one core on a Pi) and quarantines any whose bytes no longer match
their name; the service then fetches it again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

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
    ) -> None:
        if mb_per_min <= 0:
            raise ValueError(f"scrub_mb_per_min must be > 0, got {mb_per_min}")
        rate = mb_per_min * (1 << 20) / 60
        self._cache = cache
        self._limiter = AsyncLimiter(rate, BLOCK)
        self._on_corrupt = on_corrupt
        self._idle_s = idle_s
        self._last: dict[str, int] = {}  # sha -> pass number it was last checked in
        self._pass = 0
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
        self._cache.quarantine(sha, reason=f"scrub: content hashes to {h.hexdigest()[:16]}…")
        self._on_corrupt(sha)
        return False

    async def run(self) -> None:
        """Scrub forever: each pass checks every object once, least recently checked first."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._pass += 1
            todo = sorted(
                (o.sha256 for o in self._cache.objects()), key=lambda s: self._last.get(s, 0)
            )
            for sha in todo:
                if self._last.get(sha, 0) == self._pass:
                    continue
                self._last[sha] = self._pass
                await self.check(sha)
            # A pass takes at least `idle_s`: a few small files must not be
            # re-hashed hundreds of times a second.
            await asyncio.sleep(max(0.0, self._idle_s - (loop.time() - started)))
