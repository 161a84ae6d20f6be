"""One liveness registry: which long-lived parts of the agent are alive, read by the
systemd watchdog ping, the heartbeat, a local status socket and health probes.

A *part* is a long-lived task (the link, the outbox pump, the intake, each output's
planner loop, the audio engine's supervisor…). It is registered when it starts and
marked down when it dies; `healthy()` is true only while every part is up, and the
watchdog pings only then, so a dead part stops the pings (agent/sdnotify.py).

A *probe* is a cheap callable that says how something is (a modem, a screen, the
disk): `None` when fine, else a short reason. Probes are reported, never counted in
`healthy()`: a missing modem must not make systemd restart the loudspeaker.

Use:

    live = Liveness(on_change=...)            # one per agent, made by agent/service.py
    live.register("link")                      # a part is up
    live.down("link", "died: OSError(...)")    # it died (the Supervisor does this)
    live.up("link")                            # it is back
    live.watch_task("speaker.engine", task)    # a task owned elsewhere: down if it ends
    live.add_probe("modem", lambda: None)      # field checks (status socket, doctor)
    live.healthy(); live.down_parts(); live.snapshot(); live.probe_results()

`Supervisor` (agent/supervisor.py) starts parts as tasks, restarts the ones that
die (with an event) and reports them here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Probe = Callable[[], str | None]


@dataclass
class PartState:
    """How one part is. `since`: wall time of the last change; `why`: why it is down."""

    up: bool
    since: float
    why: str | None = None
    restarts: int = 0

    def as_json(self) -> dict[str, object]:
        return {"up": self.up, "since": round(self.since, 3), "why": self.why,
                "restarts": self.restarts}  # fmt: skip


class Liveness:
    def __init__(
        self,
        *,
        on_change: Callable[[], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._parts: dict[str, PartState] = {}
        self._probes: dict[str, Probe] = {}
        self._on_change = on_change
        self._wall = wall
        self.closing = False  # set at shutdown: tasks ending then are not deaths

    # ---- parts -------------------------------------------------------------------------
    def register(self, name: str) -> None:
        """`name` is a part, up from now (registering again marks it up)."""
        prev = self._parts.get(name)
        restarts = prev.restarts if prev is not None else 0
        self._parts[name] = PartState(True, self._wall(), None, restarts)
        if prev is not None and not prev.up:
            self._changed()

    def up(self, name: str) -> None:
        """Part `name` is alive again (after a restart)."""
        st = self._parts.get(name)
        if st is None:
            self.register(name)
            return
        if not st.up:
            st.up, st.why, st.since = True, None, self._wall()
            st.restarts += 1
            self._changed()

    def down(self, name: str, why: str) -> None:
        """Part `name` is dead or stuck (`why` is for the operator)."""
        st = self._parts.setdefault(name, PartState(True, self._wall()))
        if st.up or st.why != why:
            st.up, st.why, st.since = False, why, self._wall()
            self._changed()

    def forget(self, name: str) -> None:
        """`name` stopped on purpose and is no longer a part."""
        if self._parts.pop(name, None) is not None:
            self._changed()

    def watch_task(self, name: str, task: asyncio.Task[object] | asyncio.Task[None]) -> None:
        """Register a task owned elsewhere: when it ends (other than at shutdown, or
        cancelled by its owner's stop), part `name` is down for good."""
        self.register(name)

        def ended(t: asyncio.Future[object] | asyncio.Future[None]) -> None:
            if self.closing:
                return
            if t.cancelled():
                self.down(name, "cancelled")
            elif (exc := t.exception()) is not None:
                self.down(name, f"died: {exc!r}"[:200])
            else:
                self.down(name, "ended")

        task.add_done_callback(ended)

    # ---- probes --------------------------------------------------------------------------
    def add_probe(self, name: str, probe: Probe) -> None:
        """A check reported beside the parts (None: fine, else why not)."""
        self._probes[name] = probe

    def remove_probe(self, name: str) -> None:
        self._probes.pop(name, None)

    def probe_results(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name, probe in self._probes.items():
            try:
                out[name] = probe()
            except Exception as e:  # a broken probe is itself a finding, never a crash
                out[name] = f"probe failed: {e!r}"[:200]
        return out

    # ---- reading -------------------------------------------------------------------------
    def healthy(self) -> bool:
        """True while every registered part is up (the watchdog pings only then)."""
        return all(st.up for st in self._parts.values())

    def down_parts(self) -> dict[str, str]:
        """Parts that are down, with why (empty when healthy)."""
        return {n: st.why or "down" for n, st in self._parts.items() if not st.up}

    def snapshot(self) -> dict[str, PartState]:
        return {n: PartState(st.up, st.since, st.why, st.restarts) for n, st in self._parts.items()}

    def status_line(self) -> str:
        """One line for systemd's STATUS= (and logs)."""
        down = self.down_parts()
        if not down:
            return f"all {len(self._parts)} parts up"
        return "down: " + ", ".join(f"{n} ({w})" for n, w in sorted(down.items()))

    def _changed(self) -> None:
        log.info("liveness: %s", self.status_line())
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("liveness change hook failed")
