"""Test-only wall-clock shift for a whole process tree, like an NTP step.

Put this folder first on PYTHONPATH of a subprocess (its children inherit it) and set
`TCS_TEST_CLOCK_OFFSET_FILE` to a file holding a float number of seconds: `time.time`
and `time.time_ns` then return the real wall clock plus that offset (a missing or
empty file means 0). CLOCK_MONOTONIC and sleeps are untouched, which is exactly what a
real clock step does and what libfaketime cannot do here (it also moves the monotonic
clock, and with DONT_FAKE_MONOTONIC=1 `time.sleep` fails with EINVAL).

`datetime.now()` reads the C clock, not `time.time`: agent code on the playout path
uses `datetime.fromtimestamp(time.time(), tz)` so it follows the shift too.
"""

from __future__ import annotations

import os
import time

_PATH = os.environ.get("TCS_TEST_CLOCK_OFFSET_FILE", "")
_REREAD_S = 0.05  # a step shows in every process of the tree within 50 ms

_real_time = time.time
_real_time_ns = time.time_ns
_real_mono = time.monotonic
_cache = {"offset": 0.0, "read_at": float("-inf")}


def _offset() -> float:
    now = _real_mono()
    if now - _cache["read_at"] >= _REREAD_S:
        _cache["read_at"] = now
        try:
            with open(_PATH, encoding="ascii") as f:
                text = f.read().strip()
            _cache["offset"] = float(text) if text else 0.0
        except (OSError, ValueError):
            # Missing file: no shift. A half-written file: keep the last value.
            if not os.path.exists(_PATH):
                _cache["offset"] = 0.0
    return _cache["offset"]


def _time() -> float:
    return _real_time() + _offset()


def _time_ns() -> int:
    return _real_time_ns() + round(_offset() * 1e9)


if _PATH:
    time.time = _time
    time.time_ns = _time_ns
