"""Download progress for the technician CLI: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

MB = 1 << 20


def render_bar(done: int, total: int, rate_bps: float, width: int = 30) -> str:
    """`[#########.....]  45%   9.0/20.0 MiB  1.20 MiB/s` (pure)."""
    frac = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    fill = round(frac * width)
    return (
        f"[{'#' * fill}{'.' * (width - fill)}] {frac * 100:3.0f}% "
        f"{done / MB:6.1f}/{total / MB:.1f} MiB {rate_bps / MB:5.2f} MiB/s"
    )


class ProgressPrinter:
    """Callable(done, total). On a TTY redraws one line; else prints every 10 %."""

    def __init__(
        self, stream: TextIO, *, tty: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._tty = tty
        self._clock = clock
        self._t0 = clock()
        self._first: int | None = None
        self._last_draw = 0.0
        self._last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if self._first is None:
            self._first = done  # a resume starts part-way: rate counts new bytes only
        elapsed = max(1e-6, now - self._t0)
        rate = (done - self._first) / elapsed
        if self._tty:
            if now - self._last_draw >= 0.1 or done >= total:
                self._last_draw = now
                self._stream.write("\r" + render_bar(done, total, rate))
                if done >= total:
                    self._stream.write("\n")
                self._stream.flush()
            return
        decile = 10 if total <= 0 else done * 10 // total
        if decile != self._last_decile:
            self._last_decile = decile
            self._stream.write(f"{render_bar(done, total, rate)}\n")
            self._stream.flush()
