"""The alert coordinator: one `alert.*` / `test.run` fanned out to every output's loop.

Above the planner loops (one per output, agent/playout/runner.py). An alert is
built by each output for itself (the speaker speaks it, a board shows it) and
handed to each loop, which plays it by priority against that output's own
programme; the `alert.start` second ack combines them: `done` if any output played
it (a warning names those that could not), `failed` if none could. `test.run` is
queued on the outputs answering its `what` as a priority-0 source: it waits behind
whatever sounds or shows, never pre-empts anything, and its result is the ack.

`test.run` choices where PROTOCOL §3 leaves room (docs/PROTOCOL-NOTES.md):
inside quiet hours (clock trusted) it is refused at once, `failed` / `quiet_hours`,
rather than queued to sound when they end; a test that cannot start within
`TEST_WAIT_S` (a long alert, a programme of equal or higher priority) is withdrawn
and acked `failed` / `busy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.dispatch import Result
from agent.model import AlertStart
from agent.playout.alerts import ActiveAlert, ActiveTest
from agent.playout.runner import MediaPath, Playout
from agent.scheduler import in_quiet

log = logging.getLogger(__name__)

TEST_WAIT_S = 600.0  # how long a `test.run` may wait for what sounds/shows to end


class AlertCoordinator:
    def __init__(
        self, loops: Sequence[Playout], media_path: MediaPath, *, wall: Callable[[], float]
    ) -> None:
        if not loops:
            raise ValueError("an alert coordinator needs at least one output loop")
        self.loops = tuple(loops)
        self._media_path = media_path
        self._wall = wall
        self._until: dict[str, asyncio.Task[None]] = {}

    # ---- what the service and the dispatcher ask ------------------------------------
    def any_ok(self) -> bool:
        return any(lp.d.output.status().ok for lp in self.loops)

    def outputs_down(self) -> str:
        return ", ".join(lp.d.output.name for lp in self.loops if not lp.d.output.status().ok)

    def alert_priority(self, alert_id: str) -> int:
        """Priority of the active alert `alert_id` (0 when none is active): what an
        `alert.stop` naming it must be allowed to carry (PROTOCOL §3)."""
        found = [p for lp in self.loops if (p := lp.alert_priority(alert_id)) is not None]
        return max(found, default=0)

    def active_alert_ids(self) -> set[str]:
        return {a for lp in self.loops for a in lp.alerts}

    def emergency_active(self) -> bool:
        """Is anything of priority ≥ 90 sounding, showing or waiting on any output?
        (`agent.restart` / `agent.update` wait for this to be false.)"""
        return any(lp.emergency_active() for lp in self.loops)

    # ---- alert.start / alert.stop ------------------------------------------------------
    async def run_alert(self, args: AlertStart) -> Result:
        """Build the alert on every output, play it everywhere, return the second ack."""
        warnings: list[str] = []
        paths: list[Path] = []
        shas: list[str] = []
        for ref in args.media:
            path = await self._media_path(ref.sha256)
            if path is None:
                warnings.append(f"media {ref.sha256[:12]}… not in the cache; not played")
                continue
            paths.append(path)
            shas.append(ref.sha256)
        if not paths and not (args.text and args.text.strip()):
            return Result(ok=False, code="media_missing", detail="no alert media is cached")
        since = datetime.fromtimestamp(self._wall(), UTC)
        placed: list[tuple[Playout, ActiveAlert]] = []
        errors: list[str] = []
        for lp in self.loops:
            out = lp.d.output
            try:
                programme = await out.prepare_alert(args, paths, shas, warnings)
            except Exception as e:  # bad media / TTS failure on one output: others still go
                log.exception("alert %s could not be built for %s", args.alert_id, out.name)
                errors.append(f"{out.name}: {e}"[:200])
                continue
            placed.append((lp, ActiveAlert(args, programme, tuple(shas), since)))
        if not placed:
            return Result(
                ok=False, code="bad_media", detail="; ".join(errors)[:200], warnings=warnings
            )
        warnings += [f"not on {e}" for e in errors]
        for lp, alert in placed:
            lp.add_alert(alert)
        trim = self.loops[0].d.derived_written
        if trim is not None:
            # Speech renders are derived files too; trimmed only now that the alert is
            # active, so its own files count as in use and are never the ones evicted.
            await asyncio.to_thread(trim)
        if args.until is not None:
            self._arm_until(args.alert_id, args.until.timestamp())
        results = [await a.result for _lp, a in placed]
        if self.active_alert_ids().isdisjoint({args.alert_id}):
            self._disarm_until(args.alert_id)
        return _combine([lp.d.output.name for lp, _a in placed], results, warnings)

    def stop_alert(self, alert_id: str, reason: str) -> bool:
        """End alert `alert_id` on every output; False if it was active nowhere."""
        found = [lp.remove_alert(alert_id, reason) for lp in self.loops]
        self._disarm_until(alert_id)
        return any(a is not None for a in found)

    def _arm_until(self, alert_id: str, at: float) -> None:
        self._disarm_until(alert_id)

        async def until() -> None:
            await asyncio.sleep(max(0.0, at - self._wall()))
            self._until.pop(alert_id, None)
            for lp in self.loops:
                lp.remove_alert(alert_id, "until")

        self._until[alert_id] = asyncio.get_running_loop().create_task(
            until(), name=f"alert-until-{alert_id}"
        )

    def _disarm_until(self, alert_id: str) -> None:
        t = self._until.pop(alert_id, None)
        if t is not None and t is not asyncio.current_task():
            t.cancel()

    async def close(self) -> None:
        tasks = list(self._until.values())
        self._until.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    # ---- test.run ------------------------------------------------------------------------
    def tests(self, what: str) -> list[Playout]:
        return [lp for lp in self.loops if lp.d.output.test_what == what]

    async def run_test(self, what: str, wait_s: float = TEST_WAIT_S) -> Result:
        """Queue the self-test on every output answering `what`, as a priority-0 source."""
        loops = self.tests(what)
        if not loops:
            return Result(ok=False, code="not_supported", detail=f"no {what} on this device")
        reports = []
        for lp in loops:
            out = lp.d.output
            if not out.status().ok:
                return Result(
                    ok=False,
                    code="output_unavailable",
                    detail=f"{out.name} output is not available",
                )
            now = datetime.fromtimestamp(self._wall(), UTC)
            if lp.d.clock_trusted() and in_quiet(now, lp.d.tz, lp.d.quiet):
                return Result(
                    ok=False, code="quiet_hours", detail="inside quiet hours; test not played"
                )
            test = ActiveTest(f"test-{uuid.uuid4().hex[:12]}", await out.prepare_test(), now)
            lp.add_test(test)
            try:
                async with asyncio.timeout(wait_s):
                    pb = await asyncio.shield(test.result)
            except TimeoutError:
                lp.remove_test(test.test_id)
                return Result(
                    ok=False,
                    code="busy",
                    detail=f"{out.name} stayed busy for {wait_s:.0f} s; test not played",
                )
            reports.append(await out.judge_test(pb))
        ok = all(r.ok for r in reports)
        code = next((r.code for r in reports if not r.ok), None)
        return Result(ok=ok, code=code, detail="; ".join(r.detail for r in reports)[:500])


def _combine(names: list[str], results: list[Result], warnings: list[str]) -> Result:
    """One second ack from each output's: done if any played it."""
    good = [r for r in results if r.ok]
    extra = [w for r in results for w in r.warnings]
    if len(results) == 1:
        r = results[0]
        return Result(r.ok, r.code, r.detail, warnings + extra)
    failed = [f"{n}: {r.code}" for n, r in zip(names, results, strict=True) if not r.ok]
    if good:
        return Result(
            True, None, good[0].detail, warnings + extra + [f"failed on {f}" for f in failed]
        )
    return Result(False, results[0].code, "; ".join(failed)[:200], warnings + extra)
