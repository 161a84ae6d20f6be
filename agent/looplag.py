"""The loop-lag probe: how late a short timer fires on the event loop.

Everything the agent does shares one event loop; a blocking call on it (a file
walk, a SQLite read waiting behind a writer's fsync) delays every other part, the
audio starts included. The probe sleeps `period_s` again and again and records how
much later than asked it woke: `p99_ms()` for the heartbeat and the benchmark, and
a `loop_lag` warning event (at most once a minute) when one wake-up is later than
`threshold_s`.
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
    ) -> None:
        self._emit = emit
        self.period_s = period_s
        self.threshold_s = threshold_s
        self.samples: deque[float] = deque(maxlen=window)
        self._last_event: float | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.period_s)
            late = max(0.0, loop.time() - t0 - self.period_s)
            self.samples.append(late)
            if late > self.threshold_s:
                now = loop.time()
                if self._last_event is None or now - self._last_event >= EVENT_EVERY_S:
                    self._last_event = now
                    self._emit(
                        "warning",
                        "loop_lag",
                        f"event loop {late * 1000:.0f} ms late "
                        f"(threshold {self.threshold_s * 1000:.0f} ms)",
                    )

    def p99_ms(self) -> float | None:
        """99th percentile of the recent lateness, in ms (None before any sample)."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2)
