"""Where a known signal sits in a recording, robustly (for timing assertions).

`support.pulse.best_alignment` maximises the *raw* cross-correlation, which favours
louder stretches: on the self-similar `programme_signal` it can lock onto a wrong peak
~150 ms away from the true start (this was the agent's "150 ms late" KNOWN GAP). Here
the correlation is normalised by the energy of each recorded window, so the true start
(correlation ≈ 1) always wins, and the search is confined to a window around where
the signal is expected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

T = TypeVar("T")


def align_near(
    recorded: npt.NDArray[np.float32],
    source: npt.NDArray[np.float32],
    expected: int,
    search: int,
) -> tuple[int, float]:
    """(index, normalised correlation) of `source` in `recorded` within ±`search`
    samples of index `expected`."""
    if search < 0:
        raise ValueError(f"search {search} is negative")
    lo = max(0, expected - search)
    hi = min(len(recorded) - len(source), expected + search)
    if hi < lo:
        raise ValueError(
            f"recording of {len(recorded)} samples does not hold {len(source)} samples "
            f"near index {expected}"
        )
    x = np.asarray(recorded[lo : hi + len(source)], dtype=np.float64)
    s = np.asarray(source, dtype=np.float64)
    s = s - s.mean()
    n = len(x) + len(s)
    size = 1 << (n - 1).bit_length()
    raw = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(s, size)), size)
    raw = raw[: hi - lo + 1]
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    m = len(s)
    sums = c1[m : m + hi - lo + 1] - c1[: hi - lo + 1]
    sq = c2[m : m + hi - lo + 1] - c2[: hi - lo + 1]
    var = np.maximum(sq - sums * sums / m, 1e-18)
    corr = raw / (np.sqrt(var) * (np.linalg.norm(s) + 1e-12))
    k = int(np.argmax(corr))
    return lo + k, float(corr[k])


async def until(pred: Callable[[], T | bool | None], what: str, hang_s: float = 60.0) -> T:
    """Poll `pred` on the running loop until it returns something truthy; return that.

    `hang_s` only guards against a hung test (it is not a speed bound: a loaded
    machine may take long; the benchmarks measure speed).
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + hang_s
    while True:
        got = pred()
        if got:
            return got  # type: ignore[return-value]
        if loop.time() > give_up:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


def poll(
    check: Callable[[], T | None], what: str = "", *, timeout: float = 20.0, every: float = 0.01
) -> T:
    """Call `check` until it returns something truthy; return that. Fail after `timeout`
    (a guard against hanging, not a speed requirement), naming `what` was awaited; the
    blocking twin of `until`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {timeout} s: {what or check}")
        time.sleep(every)
