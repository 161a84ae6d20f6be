"""Supervised parts: long-lived tasks started in one place, restarted when they die,
torn down in reverse order (used through `contextlib.AsyncExitStack` by the service).

A part that raises is marked down in the liveness registry (so the watchdog stops
pinging), an `error` event `part_failed` is raised, and after `restart_delay_s` it is
started again (`info` event `part_restored`). A part that keeps dying (more than
`max_restarts` within `window_s`), or one started with `restart=False`, is *fatal*:
`fatal` is set and the service exits non-zero so that systemd restarts the agent.

Failpoint (tests; agent/failpoints.py): `TCS_FAILPOINTS=part.<name>` makes part
`<name>` die once, `FAILPOINT_AFTER_S` after it first started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from agent import failpoints
from agent.liveness import Liveness

log = logging.getLogger(__name__)

Emit = Callable[[str, str, str], None]  # (level, code, detail), PROTOCOL §6.5
FAILPOINT_AFTER_S = 1.0


class Supervisor:
    def __init__(
        self,
        liveness: Liveness,
        emit: Emit,
        *,
        restart_delay_s: float = 2.0,
        max_restarts: int = 5,
        window_s: float = 300.0,
    ) -> None:
        self.liveness = liveness
        self._emit = emit
        self._delay = restart_delay_s
        self._max = max_restarts
        self._window = window_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.fatal = asyncio.Event()
        self.fatal_reason: str | None = None

    def start(self, name: str, run: Callable[[], Awaitable[None]], *, restart: bool = True) -> None:
        """Run `run()` as part `name` until the supervisor closes."""
        if name in self._tasks:
            raise ValueError(f"part {name!r} is already running")
        self.liveness.register(name)
        self._tasks[name] = asyncio.get_running_loop().create_task(
            self._keep(name, run, restart), name=name
        )

    async def _keep(self, name: str, run: Callable[[], Awaitable[None]], restart: bool) -> None:
        deaths: deque[float] = deque()
        first = True
        while True:
            try:
                if first and failpoints.armed(f"part.{name}"):
                    await _die_after(run(), FAILPOINT_AFTER_S)
                else:
                    await run()
                why = "ended"
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("part %s died", name)
                why = f"died: {e!r}"[:200]
            first = False
            self.liveness.down(name, why)
            now = time.monotonic()
            deaths.append(now)
            while deaths and now - deaths[0] > self._window:
                deaths.popleft()
            if not restart or len(deaths) > self._max:
                self._emit("error", "part_failed", f"{name} {why}; agent exits"[:200])
                self.fatal_reason = f"{name}: {why}"
                self.fatal.set()
                return
            self._emit("error", "part_failed", f"{name} {why}; restarting"[:200])
            await asyncio.sleep(self._delay)
            self.liveness.up(name)
            self._emit("info", "part_restored", f"{name} restarted")

    async def stop(self, name: str) -> None:
        """Stop one part on purpose (it is then no longer counted)."""
        t = self._tasks.pop(name, None)
        if t is None:
            return
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t
        self.liveness.forget(name)

    async def aclose(self) -> None:
        """Stop every part, the last started first."""
        self.liveness.closing = True
        for name in reversed(list(self._tasks)):
            await self.stop(name)


async def _die_after(work: Awaitable[None], after_s: float) -> None:
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait([task], timeout=after_s)
        if task in done:
            task.result()
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise RuntimeError("failpoint: part killed")
    finally:
        if not task.done():
            task.cancel()
