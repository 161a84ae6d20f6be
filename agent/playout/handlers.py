"""Handlers for the alert and test commands (PROTOCOL §4): alert.start/stop/cap, test.run.

`schedule.set` and `volume.set` stay with the core handlers (agent/handlers.py),
which call each loop's `Playout.set_schedule` / `Playout.set_volume` through hooks.
Every handler answers at once (the first ack) and does the slow part (speech,
decoding, the sound itself) in `Outcome.later`, which gives the second ack. The work
is fanned out to every output by the `AlertCoordinator`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from agent.cap import CapAlert, CapCancel, parse_cap
from agent.config import AlertsConfig
from agent.dispatch import Dispatcher, Outcome, Result
from agent.model import AlertCap, AlertStart, AlertStop, TestRun
from agent.playout.coordinator import AlertCoordinator
from agent.protocol import Command

log = logging.getLogger(__name__)


class PlayoutHandlers:
    def __init__(
        self,
        coordinator: AlertCoordinator,
        alerts: AlertsConfig,
        *,
        wall: Callable[[], float],
    ) -> None:
        self._co = coordinator
        self._alerts_cfg = alerts
        self._wall = wall

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

    def _start(self, args: AlertStart, warnings: list[str] | None = None) -> Outcome:
        if (bad := self._no_output()) is not None:
            return bad
        if args.until is not None and args.until.timestamp() <= self._wall():
            return Outcome(status="failed", code="expired", detail="alert `until` has passed")
        return Outcome(warnings=warnings or [], later=self._co.run_alert(args))

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
            if action.inline:
                warnings.append("CAP inline audio (derefUri) is not played yet; text is spoken")
            return self._start(action.alert, warnings)
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
