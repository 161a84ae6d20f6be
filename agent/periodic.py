"""A step run every N seconds by one owned task, which a failing step never ends.

The health monitor and the modem service both poll hardware on a fixed rate; a
bug or an unexpected answer in one round must only cost that round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, every_s: float, step: Callable[[], Awaitable[object]]) -> None:
        if every_s <= 0:
            raise ValueError(f"{name}: every_s={every_s} must be > 0")
        self.name = name
        self.every_s = every_s
        self._step = step
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except Exception:  # one bad round must not end the polling
                log.exception("%s: round failed", self.name)
            await asyncio.sleep(self.every_s)

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
