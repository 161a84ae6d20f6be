"""Token bucket for the download bandwidth cap (`[cache] max_kbps`) and the scrub rate.

The arithmetic (`Bucket.reserve`) is a pure function of the bytes asked for and
the time passed in; `AsyncLimiter` adds the sleeping. Reading from the socket
more slowly is what makes TCP slow the sender down, so a capped download leaves
the rest of a shared 3G link to a live stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    """`rate` units per second, at most `burst` saved up. Starts empty (no initial burst)."""

    rate: float
    burst: float
    tokens: float = 0.0
    last: float | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if self.burst < 0:
            raise ValueError(f"burst must be >= 0, got {self.burst}")

    def reserve(self, n: float, now: float) -> float:
        """Take `n` units at time `now`; return how long the caller must wait first.

        Tokens may go negative (a chunk bigger than the burst): the debt is paid
        by waiting, so the long-run rate holds whatever the chunk sizes.
        """
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class AsyncLimiter:
    """Shared by every download of one agent: the cap is per device, not per file."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._bucket = Bucket(rate, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        # The lock is held while sleeping so that waiters are served in order
        # and the sum of all downloads, not each one, stays under the cap.
        async with self._lock:
            delay = self._bucket.reserve(n, self._clock())
            if delay > 0:
                await self._sleep(delay)


def kbps_to_bytes_per_s(kbps: int) -> float:
    """`max_kbps` is kilobits per second (as link speeds are sold): 1 kbps = 125 B/s."""
    if kbps < 0:
        raise ValueError(f"max_kbps must be >= 0, got {kbps}")
    return kbps * 1000 / 8
