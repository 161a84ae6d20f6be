"""The loop-lag probe: how late a short timer fires on the event loop.

Everything the agent does shares one event loop; a blocking call on it (a file
walk, a SQLite read waiting behind a writer's fsync) delays every other part, the
audio starts included. The probe sleeps `period_s` again and again and records how
much later than asked it woke: `p99_ms()` over the last `window` wake-ups for the
heartbeat and the benchmark, and a `loop_lag` warning event (at most once a minute)
when that p99 is above `threshold_s`: a lasting problem, not one busy moment (start-up).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

Emit = Callable[[str, str, str], None]

PERIOD_S = 0.05
THRESHOLD_S = 0.1
EVENT_EVERY_S = 60.0


class LoopLag:
    def __init__(
        self,
        emit: Emit,
        *,
        period_s: float = PERIOD_S,
        threshold_s: float = THRESHOLD_S,
        window: int = 1200,  # one minute of samples at 50 ms
        check_every: int = 200,  # look at the p99 every 10 s
    ) -> None:
        self._emit = emit
        self.period_s = period_s
        self.threshold_s = threshold_s
        self.samples: deque[float] = deque(maxlen=window)
        self._check_every = check_every
        self._last_event: float | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        n = 0
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.period_s)
            self.samples.append(max(0.0, loop.time() - t0 - self.period_s))
            n += 1
            if n % self._check_every or len(self.samples) < self._check_every:
                continue
            p99 = self.p99_ms()
            if p99 is None or p99 <= self.threshold_s * 1000:
                continue
            now = loop.time()
            if self._last_event is None or now - self._last_event >= EVENT_EVERY_S:
                self._last_event = now
                self._emit(
                    "warning",
                    "loop_lag",
                    f"event loop p99 {p99:.0f} ms late over the last {len(self.samples)} "
                    f"wake-ups (threshold {self.threshold_s * 1000:.0f} ms)",
                )

    def p99_ms(self) -> float | None:
        """99th percentile of the recent lateness, in ms (None before any sample)."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2)
