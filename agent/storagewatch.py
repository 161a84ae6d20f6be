"""Tells the province when the state database left the card or came back, and brings
it back: events `storage_full` / `storage_readonly` / `storage_unavailable` when the
state had to move to memory (agent/db.py), `storage_ok` once it is written back, and
`storage_corrupt` when start-up rebuilt it from a corrupt file, and `state_moved_aside`
for every stored value that failed to load (agent/state.py).

A restore is tried every `retry_s` while degraded; `Database.try_restore` first checks
(without writing) that the medium is writable and has room, so a full card is not
worn by attempts that cannot succeed.

Other writers of regenerable files subscribe (`subscribe`) to hear when the card cannot
take them (the database is degraded, the medium is read-only, or less than
`LOW_SPACE_BYTES` is free) and when it can again: the audio engine then decodes speech
and media into RAM (`pcm_spill`), so an alert is still spoken on a full card.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.db import Database
from agent.fsutil import read_only_medium, scratch_dir
from agent.reporter import Reporter
from agent.state import StateStore

log = logging.getLogger(__name__)

RETRY_S = 2.0
POLL_S = 0.5
LOW_SPACE_BYTES = 1024 * 1024

_EVENT = {"full": "storage_full", "readonly": "storage_readonly", "error": "storage_unavailable"}


class StorageWatch:
    def __init__(
        self,
        db: Database,
        reporter: Reporter,
        *,
        state: StateStore | None = None,
        unjournalled: Callable[[], int] = lambda: 0,
        retry_s: float = RETRY_S,
    ) -> None:
        self._db = db
        self._reporter = reporter
        self._state = state
        self._unjournalled = unjournalled
        self._retry_s = retry_s
        self._reported: str | None = None  # the degraded kind last announced
        self._since_commits = 0
        self._since_unjournalled = 0
        self._listeners: list[Callable[[bool], None]] = []
        self._unwritable = False

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(unwritable)` now and whenever the card's state changes."""
        self._listeners.append(listener)
        listener(self._unwritable)

    def _medium_unwritable(self) -> bool:
        if self._db.degraded is not None:
            return True
        folder = self._db.path.parent
        if read_only_medium(folder):
            return True
        try:
            st = os.statvfs(folder)
        except OSError:
            return True
        return st.f_bavail * st.f_frsize < LOW_SPACE_BYTES

    async def announce_start(self) -> None:
        """Events for what the open found: a rebuilt file, or state kept in memory."""
        db = self._db
        if db.recovered_from is not None:
            kept = ", ".join(f"{n} {t}" for t, n in sorted(db.salvaged.items())) or "nothing"
            await self._reporter.event(
                "error",
                "storage_corrupt",
                f"state database was corrupt ({db.recovery_reason}) and was replaced; "
                f"salvaged {kept}; old file kept at {db.recovered_from}",
            )
        await self._check()

    async def run(self) -> None:
        """Announce changes and retry the restore while degraded. Runs forever."""
        loop = asyncio.get_running_loop()
        next_try = loop.time() + self._retry_s
        while True:
            await asyncio.sleep(POLL_S)
            if self._db.degraded is not None and loop.time() >= next_try:
                await asyncio.to_thread(self._db.try_restore)
                next_try = loop.time() + self._retry_s
            await self._check()

    async def _check(self) -> None:
        for key, reason, aside in self._state.quarantined() if self._state else ():
            await self._reporter.event(
                "error",
                "state_moved_aside",
                f"stored {key} could not be used ({reason}); kept as {aside} for diagnosis, "
                "serving on without it",
            )
        unwritable = await asyncio.to_thread(self._medium_unwritable)
        if unwritable != self._unwritable:
            self._unwritable = unwritable
            for listener in self._listeners:
                try:
                    listener(unwritable)
                except Exception:
                    log.exception("storage listener failed")
        kind = self._db.degraded
        if kind == self._reported:
            return
        if kind is not None:
            self._reported = kind
            self._since_commits = self._db.memory_commits
            self._since_unjournalled = self._unjournalled()
            await self._reporter.event(
                "error",
                _EVENT[kind],
                f"{self._db.degraded_detail}; serving on with the state in memory: "
                "commands are obeyed and proofs kept until it can be written again, "
                "but a power cut now loses them",
            )
            return
        self._reported = None
        commits = self._db.memory_commits - self._since_commits
        unjournalled = self._unjournalled() - self._since_unjournalled
        await self._reporter.event(
            "info",
            "storage_ok",
            f"state written back to {self._db.path}; meanwhile {commits} change(s) were "
            f"kept only in memory and {unjournalled} command(s) were acted on without a "
            "durable journal",
        )


def pcm_spill(engine: Any, disk_dir: Path) -> Callable[[bool], None]:
    """A listener that points `engine.pcm_dir` (decoded PCM and speech, all regenerable)
    at a private RAM folder while the card cannot take writes, and back after."""

    def switch(unwritable: bool) -> None:
        target = scratch_dir(disk_dir, force_ram=True) if unwritable else scratch_dir(disk_dir)
        if target != engine.pcm_dir:
            log.warning("decoded audio now goes to %s", target)
            engine.pcm_dir = target

    return switch


async def watch_storage(
    db: Database,
    reporter: Reporter,
    state: StateStore,
    unjournalled: Callable[[], int],
    engine: Any | None = None,
) -> StorageWatch:
    """The service's one call at start: announce what the open found, point the audio
    engine's decoded PCM (`<storage>/pcm`) at RAM whenever the card cannot take writes;
    the caller `run()`s it."""
    watch = StorageWatch(db, reporter, state=state, unjournalled=unjournalled)
    await watch.announce_start()
    if engine is not None:
        watch.subscribe(pcm_spill(engine, db.path.parent / "pcm"))
    return watch
