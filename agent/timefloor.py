"""The durable time floor (PROTOCOL §3, last paragraph, as changed 2026-12-01).

One persisted number: the largest of the wall times seen while the clock was
trusted and the `iat`s of commands that were **accepted**. It is the device's
lower bound for the time when the clock is not trusted (expiry checks), the
line below which a wall clock is not believed (agent/clock.py), and the only
time the replay store is pruned by (agent/replay.py), so a jti forgotten at a
trusted restart cannot come back after a boot with a clock in the past.

It only moves up, and only as far as something vouches for:
- an accepted command raises it to `min(iat, exp)`, and while the clock is
  trusted never beyond trusted now + leeway (a key may sign any `iat`);
- while the clock is not trusted, an accepted command raises it at most
  UNTRUSTED_STEP_S beyond what it was when this process started, plus the
  monotonic time elapsed since: even a key allowed to issue some command cannot
  push it years ahead (the brick of issue 7 item 2);
- trusted wall time is recorded at most once a minute (SD-card wear).

Lowering it takes a token signed by a trust key allowed `clock.lower_floor`
(agent/floorcli.py, docs/PROTOCOL-NOTES.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Final

from agent.state import StateStore

log = logging.getLogger(__name__)

FLOOR_KEY: Final = "clock.floor"
# The key of the old "largest verified iat" bound: it may hold a value poisoned by a
# rejected command (issue 7 item 2), so it is dropped, never carried over.
OLD_LOWER_BOUND_KEY: Final = "clock.lower_bound"
RECORD_EVERY_S: Final = 60.0
UNTRUSTED_STEP_S: Final = 86400.0
LEEWAY_S: Final = 30
MAX_TIME: Final = float(2**53)


def _valid(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    v = float(value)
    return v if math.isfinite(v) and 0.0 <= v <= MAX_TIME else 0.0


def raised(floor: float, *, iat: int, exp: int, trusted_now: float | None,
           untrusted_ceiling: float, leeway_s: int = LEEWAY_S) -> float:
    """The floor after accepting a command with `iat`/`exp` (pure)."""
    candidate = float(min(iat, exp))
    if trusted_now is not None:
        candidate = min(candidate, trusted_now + leeway_s)
    else:
        candidate = min(candidate, untrusted_ceiling)
    return max(floor, candidate)


class TimeFloor:
    """The floor, read once at start and kept in memory; persisted when it moves."""

    def __init__(self, state: StateStore, *, leeway_s: int = LEEWAY_S,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self._state = state
        self._leeway = leeway_s
        self._mono = mono
        self._value = _valid(state.get(FLOOR_KEY, 0))
        self._base = self._value
        self._mono0 = mono()
        self._recorded_at: float | None = None

    def value(self) -> float:
        return self._value

    def untrusted_ceiling(self) -> float:
        return self._base + (self._mono() - self._mono0) + UNTRUSTED_STEP_S

    def after_accept(self, iat: int, exp: int, trusted_now: float | None) -> bool:
        """Raise the floor for an accepted command; True if it moved (then `persist`)."""
        new = raised(self._value, iat=iat, exp=exp, trusted_now=trusted_now,
                     untrusted_ceiling=self.untrusted_ceiling(), leeway_s=self._leeway)
        if new <= self._value:
            return False
        self._value = new
        return True

    def trusted_wall(self, wall: float) -> bool:
        """Take in a trusted wall time; True when it is time to persist (once a minute)."""
        if not math.isfinite(wall) or wall <= self._value:
            return False
        self._value = min(wall, MAX_TIME)
        now = self._mono()
        if self._recorded_at is not None and now - self._recorded_at < RECORD_EVERY_S:
            return False
        self._recorded_at = now
        return True

    def persist(self) -> None:
        self._state.set(FLOOR_KEY, self._value)

    def lower_to(self, value: float) -> None:
        """Set the floor lower (a verified technician token; agent/floorcli.py)."""
        self._value = self._base = _valid(value)
        self._mono0 = self._mono()
        self.persist()

    def drop_old_bound(self) -> None:
        if self._state.get(OLD_LOWER_BOUND_KEY) is not None:
            self._state.delete(OLD_LOWER_BOUND_KEY)

    async def run(self, trusted: Callable[[], bool], wall: Callable[[], float] = time.time
                  ) -> None:
        """Record trusted wall time into the floor, at most once a minute (owned by the service)."""
        while True:
            if trusted() and self.trusted_wall(wall()):
                try:
                    await asyncio.to_thread(self.persist)
                except Exception:  # a storage fault must not end the agent; retried next time
                    log.exception("could not record the time floor")
                    self._recorded_at = None
            await asyncio.sleep(RECORD_EVERY_S)
