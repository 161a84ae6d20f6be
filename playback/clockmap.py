"""Mapping the audio stream's clock to wall time (pure).

PortAudio reports, in each callback, `currentTime` and `outputBufferDacTime` on the
stream's own clock. The callback reads the wall clock a moment after PortAudio took
`currentTime`; that moment is never negative, so over a short window the smallest
`wall - currentTime` is the best estimate of the offset between the clocks (the same
trick NTP uses on round trips). A backward step of the wall clock (NTP correcting
a clock that ran ahead) is followed at once, since the minimum drops with it; a
forward step (the usual case at boot: a stale fake-hwclock time corrected) would be
hidden by the old, smaller offsets, so an offset more than STEP_S above the estimate
is taken as a step and the window starts afresh.
"""

from __future__ import annotations

from collections import deque

STEP_S = 0.5  # far above callback jitter (ms), far below any clock step worth a re-plan


class ClockMap:
    def __init__(self, window: int = 100) -> None:
        self._offsets: deque[float] = deque(maxlen=window)
        self._best: float | None = None

    def observe(self, wall_now: float, stream_now: float) -> None:
        off = wall_now - stream_now
        if self._best is not None and off - self._best > STEP_S:
            self._offsets.clear()
            self._best = None
        if len(self._offsets) == self._offsets.maxlen:
            dropped = self._offsets[0]
            self._offsets.append(off)
            if self._best is None or dropped <= self._best or off < self._best:
                self._best = min(self._offsets)
        else:
            self._offsets.append(off)
            self._best = off if self._best is None else min(self._best, off)

    def to_wall(self, stream_time: float) -> float:
        if self._best is None:
            raise RuntimeError("no clock observation yet")
        return stream_time + self._best
