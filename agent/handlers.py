"""Handlers for the commands the core itself carries out (PROTOCOL §4).

`status.request`, `volume.set`, `schedule.set` (stored durably and versioned) and
`agent.restart`. Sound, cache and board capabilities register their own handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from agent.commands import ArgsError, validate_args
from agent.dispatch import Dispatcher, Outcome
from agent.model import ScheduleSet, VolumeSet
from agent.protocol import Command
from agent.state import StateStore

VOLUME_KEY = "audio.volume"
SCHEDULE_KEY = "schedule.current"
SCHEDULE_VERSION_KEY = "schedule.version"


def load_schedule(state: StateStore) -> ScheduleSet | None:
    """The schedule kept by `schedule.set`, validated again; None if absent. One that
    no longer validates (corrupt, or outdated by tighter bounds) is moved aside with an
    event and the device waits for the province's next schedule: it must never keep
    the agent from starting."""
    return state.get_valid(SCHEDULE_KEY, _stored_schedule, None)


def stored_volume(state: StateStore) -> int:
    """The master volume set by `volume.set` (100 when never set or unusable)."""
    return state.get_valid(VOLUME_KEY, _volume, 100)


def _volume(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"{value!r} is not a volume 0-100")
    return value


def _stored_schedule(doc: object) -> ScheduleSet:
    if not isinstance(doc, dict) or not isinstance(doc.get("args"), dict):
        raise ValueError("not a stored schedule.set")
    try:
        parsed = validate_args("schedule.set", doc["args"])
    except ArgsError as exc:
        raise ValueError(exc.detail) from None
    if not isinstance(parsed, ScheduleSet):
        raise ValueError("not a schedule")
    return parsed


class CoreHandlers:
    def __init__(
        self,
        state: StateStore,
        *,
        beat_now: Callable[[], Awaitable[None]],
        request_restart: Callable[[], None],
        on_schedule: Callable[[ScheduleSet], Awaitable[list[str]]] | None = None,
        on_volume: Callable[[int], None] | None = None,
    ) -> None:
        self._state = state
        self._beat_now = beat_now
        self._request_restart = request_restart
        self._on_schedule = on_schedule
        self._on_volume = on_volume

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register("status.request", self.status_request)
        dispatcher.register("volume.set", self.volume_set)
        dispatcher.register("schedule.set", self.schedule_set)
        dispatcher.register("agent.restart", self.agent_restart)

    async def status_request(self, cmd: Command) -> Outcome:
        await self._beat_now()
        return Outcome()

    async def volume_set(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, VolumeSet)
        await asyncio.to_thread(self._state.set, VOLUME_KEY, cmd.args.level)
        if self._on_volume is not None:
            self._on_volume(cmd.args.level)
        return Outcome()

    async def schedule_set(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, ScheduleSet)
        current = self._state.get(SCHEDULE_VERSION_KEY)
        if current is not None and cmd.args.version <= int(current):
            return Outcome(
                status="stale",
                detail=f"version {cmd.args.version} is not newer than the current {current}",
            )
        # Stored exactly as signed; `load_schedule` validates it again on start.
        await asyncio.to_thread(
            self._state.set_many,
            {SCHEDULE_KEY: {"args": dict(cmd.raw_args)}, SCHEDULE_VERSION_KEY: cmd.args.version},
        )
        warnings: list[str] = []
        if self._on_schedule is not None:
            warnings = await self._on_schedule(cmd.args)
        return Outcome(warnings=warnings)

    async def agent_restart(self, cmd: Command) -> Outcome:
        self._request_restart()
        return Outcome()
