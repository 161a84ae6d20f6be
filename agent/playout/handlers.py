"""Handlers for the alert and test commands (PROTOCOL §4): alert.start/stop/cap, test.run.

`schedule.set` and `volume.set` stay with the core handlers (agent/handlers.py),
which call each loop's `Playout.set_schedule` / `Playout.set_volume` through hooks.
Every handler answers at once (the first ack) and does the slow part (speech,
decoding, the sound itself) in `Outcome.later`, which gives the second ack. The work
is fanned out to every output by the `AlertCoordinator`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from agent.cap import CapAlert, CapCancel, parse_cap
from agent.config import AlertsConfig
from agent.dispatch import Dispatcher, Outcome, Result
from agent.model import AlertCap, AlertStart, AlertStop, TestRun
from agent.playout.coordinator import AlertCoordinator
from agent.protocol import Command

log = logging.getLogger(__name__)


class InlineMedia(Protocol):
    """Where media carried inside a command (CAP `derefUri`, §5.4) is put: the media
    cache (`agent.cache.store.MediaCache`), injected at start. `store_bytes` blocks
    (it writes and fsyncs): it is called in a thread."""

    @property
    def max_media_bytes(self) -> int: ...

    def store_bytes(self, sha256: str, data: bytes) -> Path: ...


class PlayoutHandlers:
    def __init__(
        self,
        coordinator: AlertCoordinator,
        alerts: AlertsConfig,
        *,
        wall: Callable[[], float],
        inline_media: InlineMedia | None = None,
    ) -> None:
        self._co = coordinator
        self._alerts_cfg = alerts
        self._wall = wall
        self._inline = inline_media

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register("alert.start", self.alert_start)
        dispatcher.register("alert.stop", self.alert_stop)
        dispatcher.register("alert.cap", self.alert_cap)
        dispatcher.register("test.run", self.test_run)

    def _no_output(self) -> Outcome | None:
        if self._co.any_ok():
            return None
        return Outcome(
            status="failed",
            code="output_unavailable",
            detail=f"no output is available ({self._co.outputs_down()})",
        )

    # ---- alert.start ---------------------------------------------------------------

    async def alert_start(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, AlertStart)
        return self._start(cmd.args)

    def _start(
        self,
        args: AlertStart,
        warnings: list[str] | None = None,
        inline: Mapping[str, bytes] | None = None,
    ) -> Outcome:
        if (bad := self._no_output()) is not None:
            return bad
        if args.until is not None and args.until.timestamp() <= self._wall():
            return Outcome(status="failed", code="expired", detail="alert `until` has passed")
        later = self._co.run_alert(args) if not inline else self._cached_then_run(args, inline)
        return Outcome(warnings=warnings or [], later=later)

    async def _cached_then_run(self, args: AlertStart, inline: Mapping[str, bytes]) -> Result:
        """Put a CAP's inline audio into the cache, then sound the alert. Audio that
        cannot be stored (disk full) is left out with a warning; the text still plays."""
        assert self._inline is not None
        notes: list[str] = []
        for sha, data in inline.items():
            try:
                await asyncio.to_thread(self._inline.store_bytes, sha, data)
            except (OSError, ValueError) as e:
                log.warning("CAP audio %s not cached: %s", sha[:12], e)
                notes.append(f"CAP audio {sha[:12]}… could not be cached ({e})"[:200])
        result = await self._co.run_alert(args)
        return dataclasses.replace(result, warnings=notes + result.warnings)

    # ---- alert.stop / alert.cap ------------------------------------------------------

    async def alert_stop(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, AlertStop)
        if not self._co.stop_alert(cmd.args.alert_id, "alert.stop"):
            return Outcome(
                status="failed", code="unknown_alert",
                detail=f"no alert {cmd.args.alert_id!r} is active",
            )  # fmt: skip
        return Outcome()

    async def alert_cap(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, AlertCap)
        cfg = self._alerts_cfg
        action = parse_cap(
            cmd.args.xml, language=cfg.language, play_test=cfg.play_cap_test,
            play_exercise=cfg.play_cap_exercise, now=datetime.fromtimestamp(self._wall(), UTC),
        )  # fmt: skip
        if isinstance(action, CapCancel):
            for stop in action.stops:
                self._co.stop_alert(stop.alert_id, "cap_cancel")
            return Outcome(warnings=list(action.warnings))
        if isinstance(action, CapAlert):
            for old in action.replaces:
                self._co.stop_alert(old, "cap_update")
            warnings = list(action.warnings)
            alert = action.alert
            inline = action.inline
            if inline and self._inline is None:  # a device without a media cache
                warnings.append("CAP inline audio (derefUri) cannot be cached here; not played")
                alert = dataclasses.replace(alert, media=())
                inline = {}
            elif inline and self._inline is not None:
                limit = self._inline.max_media_bytes
                big = next((n for n in map(len, inline.values()) if n > limit), None)
                if big is not None:
                    return Outcome(
                        status="failed", code="bad_args",
                        detail=f"CAP derefUri audio is {big} bytes, above the cache's "
                        f"max media size ({limit} bytes)",
                    )  # fmt: skip
            if not alert.media and not (alert.text and alert.text.strip()):
                return Outcome(status="failed", code="bad_args", detail="CAP has nothing to play")
            return self._start(alert, warnings, inline)
        # The XML itself passed verification (§3 step 9, `check_cap`), so the command is
        # accepted; what the CAP *says* (Draft, already expired, …) is refused in the
        # second ack, as for every long-running command (§6.3: accepted, then failed).
        refusal = Result(ok=False, code=action.code, detail=action.detail)

        async def refused() -> Result:
            return refusal

        return Outcome(later=refused())

    # ---- test.run ------------------------------------------------------------------------

    async def test_run(self, cmd: Command) -> Outcome:
        """Queued like a priority-0 item on the outputs it names (coordinator docstring):
        it never interrupts what sounds or shows; the result is the second ack."""
        assert isinstance(cmd.args, TestRun)
        loops = self._co.tests(cmd.args.what)
        if loops and not any(lp.d.output.status().ok for lp in loops):
            return Outcome(
                status="failed",
                code="output_unavailable",
                detail=f"{cmd.args.what} output is not available",
            )
        return Outcome(later=self._co.run_test(cmd.args.what))
