"""What `tcs-agent status` shows: the running agent's live state, gathered on request.

Built from narrow callables the service hands in (the same ones the heartbeat uses),
so this module knows nothing of the link, the database or the player. Blocking reads
(the schedule and outbox in SQLite, the cache statistics) run in a worker thread.
Times are shown in the device's local time zone: the technician on the pole thinks in
local time, the province in UTC offsets, and RFC 3339 with the offset serves both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent import __version__
from agent.clock import ClockStatus
from agent.model import ScheduleSet
from agent.probes.monitor import Snapshot
from agent.scheduler.occurrences import next_occurrence
from agent.timeutil import rfc3339_ms

NEXT_SHOWN = 5


class LastError(logging.Handler):
    """Remembers the agent's last ERROR log line (what `status` shows as `last_error`)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: tuple[float, str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.last = (record.created, record.getMessage()[:500])
        except Exception:  # a malformed log call must not break logging
            self.last = (record.created, str(record.msg)[:500])


@dataclass
class StatusView:
    device_id: str
    broker: str
    tz: ZoneInfo
    link_connected: Callable[[], bool]
    clock: Callable[[], ClockStatus]
    schedule: Callable[[], ScheduleSet | None]
    outbox: Callable[[], int]
    cache: Callable[[], dict[str, Any]]
    health: Callable[[], Snapshot | None]
    last_error: LastError
    playing: Callable[[], Any] | None = None
    alert_id: Callable[[], Any] | None = None
    showing: Callable[[], Any] | None = None
    parts: Callable[[], Any] | None = None  # the liveness registry: parts down, probe results
    wall: Callable[[], float] = time.time

    async def build(self) -> dict[str, Any]:
        schedule, outbox, cache = await asyncio.to_thread(self._blocking)
        now = self.wall()
        snap = self.health()
        err = self.last_error.last
        return {
            "device": self.device_id,
            "agent_version": __version__,
            "at": rfc3339_ms(now, self.tz),
            "link": {"connected": self.link_connected(), "broker": self.broker},
            "clock": self.clock().as_json(),
            "playing": _call(self.playing),
            "alert_id": _call(self.alert_id),
            "showing": _call(self.showing),
            "schedule_version": schedule.version if schedule else None,
            "next": next_occurrences(schedule, self.tz, now),
            "cache": cache,
            "outbox": outbox,
            "last_error": _error(err, self.tz),
            "parts": _call(self.parts),
            "health": None
            if snap is None
            else {
                "cpu_temp_c": snap.cpu_temp_c,
                "load1": snap.load1,
                "mem_used_pct": snap.mem_used_pct,
                "disk_free_mb": snap.disk_free_mb,
                **snap.details(),
            },
        }

    def _blocking(self) -> tuple[ScheduleSet | None, int | None, dict[str, Any] | None]:
        return _safe(self.schedule), _safe(self.outbox), _safe(self.cache)


def next_occurrences(
    schedule: ScheduleSet | None, tz: ZoneInfo, now: float, limit: int = NEXT_SHOWN
) -> list[dict[str, Any]]:
    """The schedule's next occurrences after `now`, soonest first, in local time."""
    if schedule is None:
        return []
    after = datetime.fromtimestamp(now, tz)
    found = []
    for item in schedule.items:
        try:
            occ = next_occurrence(item, tz, after)
        except ValueError:
            continue
        if occ is not None:
            found.append((occ.at, item))
    found.sort(key=lambda pair: pair[0])
    return [
        {
            "item_id": item.id,
            "kind": item.kind,
            "at": rfc3339_ms(at.timestamp(), tz),
            "priority": item.priority,
        }
        for at, item in found[:limit]
    ]


def _error(err: tuple[float, str] | None, tz: ZoneInfo) -> dict[str, str] | None:
    return None if err is None else {"at": rfc3339_ms(err[0], tz), "message": err[1]}


def _call(fn: Callable[[], Any] | None) -> Any:
    return _safe(fn) if fn is not None else None


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        logging.getLogger(__name__).exception("status field failed")
        return None
