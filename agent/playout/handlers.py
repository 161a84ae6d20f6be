"""Handlers for the sound commands (PROTOCOL §4): alert.start/stop/cap and test.run.

`schedule.set` and `volume.set` stay with the core handlers (agent/handlers.py),
which call `Playout.set_schedule` / `Playout.set_volume` through their hooks.
Every handler answers at once (the first ack) and does the slow part (speech,
decoding, the sound itself) in `Outcome.later`, which gives the second ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from agent.cap import CapAlert, CapCancel, parse_cap
from agent.config import AlertsConfig
from agent.dispatch import Dispatcher, Outcome, Result
from agent.model import AlertCap, AlertStart, AlertStop, TestRun
from agent.playout.alerts import ActiveAlert
from agent.playout.runner import MediaPath, Playout
from agent.protocol import Command
from playback.alert import build_alert
from playback.engine import AudioEngine
from playback.monitor import LevelMonitor
from playback.selftest import test_tone

log = logging.getLogger(__name__)
# How long `test.run speaker` waits for a monitor input that is still opening.
MONITOR_GRACE_S = 3.0


class PlayoutHandlers:
    def __init__(
        self,
        playout: Playout,
        engine: AudioEngine,
        media_path: MediaPath,
        alerts: AlertsConfig,
        *,
        wall: Callable[[], float],
        monitor: LevelMonitor | None = None,
    ) -> None:
        self._playout = playout
        self._monitor = monitor
        self._engine = engine
        self._media_path = media_path
        self._alerts_cfg = alerts
        self._wall = wall

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register("alert.start", self.alert_start)
        dispatcher.register("alert.stop", self.alert_stop)
        dispatcher.register("alert.cap", self.alert_cap)
        dispatcher.register("test.run", self.test_run)

    def _no_output(self) -> Outcome | None:
        if self._engine.status().ok:
            return None
        return Outcome(
            status="failed",
            code="output_unavailable",
            detail=f"audio output {self._engine.output!r} is not available",
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
        return Outcome(warnings=warnings or [], later=self._run_alert(args))

    async def _run_alert(self, args: AlertStart) -> Result:
        warnings: list[str] = []
        media = []
        shas: list[str] = []
        for ref in args.media:
            path = await self._media_path(ref.sha256)
            if path is None:
                warnings.append(f"media {ref.sha256[:12]}… not in the cache; not played")
                continue
            media.append(path)
            shas.append(ref.sha256)
        if not media and not (args.text and args.text.strip()):
            return Result(ok=False, code="media_missing", detail="no alert media is cached")
        try:
            programme = await build_alert(
                self._engine, media=media, sha256s=shas, text=args.text, lang=args.lang,
                repeat=args.repeat, gap_s=args.gap_s, chime=args.chime, warnings=warnings,
            )  # fmt: skip
        except Exception as e:  # bad media / espeak failure: the province must see why
            log.exception("alert %s could not be built", args.alert_id)
            return Result(ok=False, code="bad_media", detail=str(e)[:200], warnings=warnings)
        alert = ActiveAlert(args, programme, tuple(shas), datetime.fromtimestamp(self._wall(), UTC))
        if args.until is not None:
            alert.until_task = asyncio.get_running_loop().create_task(
                self._until(args.alert_id, args.until.timestamp())
            )
        self._playout.add_alert(alert)
        result = await alert.result
        return Result(result.ok, result.code, result.detail, warnings + result.warnings)

    async def _until(self, alert_id: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self._wall()))
        self._playout.remove_alert(alert_id, "until")

    # ---- alert.stop / alert.cap ------------------------------------------------------

    async def alert_stop(self, cmd: Command) -> Outcome:
        assert isinstance(cmd.args, AlertStop)
        if self._playout.remove_alert(cmd.args.alert_id, "alert.stop") is None:
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
                self._playout.remove_alert(stop.alert_id, "cap_cancel")
            return Outcome(warnings=list(action.warnings))
        if isinstance(action, CapAlert):
            for old in action.replaces:
                self._playout.remove_alert(old, "cap_update")
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
        assert isinstance(cmd.args, TestRun)
        if cmd.args.what != "speaker":

            async def unsupported() -> Result:
                return Result(ok=False, code="not_supported", detail="no display test here")

            return Outcome(later=unsupported())
        if (bad := self._no_output()) is not None:
            return bad

        async def run() -> Result:
            # A monitor that is itself down cannot judge the speaker: test without it
            # and say so, rather than blame the speaker (`monitor_unavailable` was sent).
            monitor = self._monitor
            # Just after start-up the input may still be opening: give it a moment.
            if monitor is not None and not await monitor.wait_ready(MONITOR_GRACE_S):
                monitor = None
            res = await test_tone(self._engine, monitor)
            with contextlib.suppress(Exception):
                self._playout.wake()  # whatever the tone pre-empted is re-planned
            detail = f"{res.detail}; level {res.level_dbfs} dBFS"
            if monitor is not None:
                heard = "nothing" if res.heard_dbfs is None else f"{res.heard_dbfs} dBFS"
                detail += f"; heard {heard}"
            elif self._monitor is not None:
                detail += "; not verified: monitor unavailable"
            # Sent but not heard is what acoustic verification exists to catch (a dead
            # amplifier, a cut cable, a muted horn): say so apart from a failed output.
            # (SpeakerTest has no flag for it; its detail is the only difference.)
            not_heard = not res.ok and monitor is not None and "not hear" in res.detail
            code = None if res.ok else "not_heard" if not_heard else "speaker_failed"
            return Result(ok=res.ok, code=code, detail=detail)

        return Outcome(later=run())
