"""Sound from silence on time (issue 8): no amplifier, no warm-up; with a switched
amplifier, it is on `amp_lead_s` before a planned start, which then lands on its
sample. Times are the engine's DAC timestamps (what the player measured), not how
long the test took."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from support.engine import Events, make_engine
from support.pulse import PulseRig
from support.timing import until

from playback.selftest import tone_prepared


class RecordingAmp:
    """A switched amplifier that records when it was switched (a fake: no relay here)."""

    def __init__(self) -> None:
        self.is_on = False
        self.calls: list[tuple[str, float]] = []

    def on(self) -> None:
        self.is_on = True
        self.calls.append(("on", time.time()))

    def off(self) -> None:
        self.is_on = False
        self.calls.append(("off", time.time()))


def test_playback_silence_no_amplifier_never_waits(pulse: PulseRig, tmp_path: Path) -> None:
    async def main() -> None:
        events = Events()
        # The defaults that made the first alert after silence 2 s late.
        eng = make_engine(tmp_path, events, amp_lead_s=2.0, amp_idle_s=0.0)
        await eng.start()
        try:
            tone = await tone_prepared(eng)
            first = eng.play(tone)
            await first.done
            # Long silence: the (null) amplifier policy has gone "off".
            await until(lambda: eng._power._on_since is None, "amplifier policy idle")
            asked = time.time()
            v = eng.play(tone)
            assert v.at_wall is None  # not deferred for a warm-up nothing needs
            await v.done
            assert v.outcome == "completed" and v.first_sample_wall is not None
            assert v.first_sample_wall >= asked
        finally:
            await eng.stop()

    asyncio.run(main())


def test_playback_silence_amplifier_on_lead_before_planned_start(
    pulse: PulseRig, tmp_path: Path
) -> None:
    async def main() -> None:
        events = Events()
        amp = RecordingAmp()
        eng = make_engine(tmp_path, events, amplifier=amp, amp_lead_s=2.0, amp_idle_s=0.0)
        await eng.start()
        try:
            tone = await tone_prepared(eng)
            at = time.time() + 4.0
            eng.expect(at)  # the planner's next start, long before it
            await until(lambda: amp.calls, "amplifier switched on")
            ((what, on_at),) = amp.calls
            assert what == "on" and on_at <= at - 2.0
            # The runner hands the start over about a second ahead (runner.AIM_S).
            await until(lambda: time.time() >= at - 0.8, "aim time")
            v = eng.play(tone, at_wall=at)
            await v.done
            assert v.outcome == "completed" and v.first_sample_wall is not None
            assert abs(v.first_sample_wall - at) < 0.02, v.first_sample_wall - at
        finally:
            await eng.stop()

    asyncio.run(main())


def test_playback_silence_emergency_waits_only_emergency_lead(
    pulse: PulseRig, tmp_path: Path
) -> None:
    """The documented trade-off: an emergency with the amplifier off waits only
    `emergency_lead_s` (its chime covers the rest of the settling), not `amp_lead_s`."""

    async def main() -> None:
        events = Events()
        amp = RecordingAmp()
        eng = make_engine(
            tmp_path, events, amplifier=amp, amp_lead_s=2.0, amp_idle_s=0.0, emergency_lead_s=0.3
        )
        await eng.start()
        try:
            tone = await tone_prepared(eng)
            asked = time.time()
            urgent = eng.play(tone, use_master=False)
            assert urgent.at_wall is not None and urgent.at_wall - asked < 2.0 - 0.3
            await urgent.done
            assert urgent.outcome == "completed"
            assert amp.calls and amp.calls[0][0] == "on"
        finally:
            await eng.stop()

    asyncio.run(main())
