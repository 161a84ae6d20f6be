"""Amplifier power: the driver interface and the on/off timing policy.

A horn amplifier draws power and hums when idle, so it is switched on only around
sound: `lead_s` seconds before the first sample (amplifiers need a moment to settle,
and switching on under signal makes a loud thump), and off after `idle_s` seconds of
silence. The hardware implementation (a GPIO relay) comes later; `NullAmplifier`
stands in where there is no relay. `AmplifierPower` is the pure timing logic: it is
told the time, never reads a clock.
"""

from __future__ import annotations

from typing import Protocol


class Amplifier(Protocol):
    """What the audio engine needs from an amplifier power switch."""

    @property
    def is_on(self) -> bool: ...

    def on(self) -> None: ...

    def off(self) -> None: ...


class NullAmplifier:
    """No switchable amplifier: always considered on, so sound never waits for it."""

    @property
    def is_on(self) -> bool:
        return True

    def on(self) -> None:
        return None

    def off(self) -> None:
        return None


class AmplifierPower:
    """Decides when the amplifier is switched, given the time and what is playing.

    `update()` is called regularly (the engine calls it every few hundred ms and on
    every play request) with the current wall time, whether sound is playing and the
    start time of the next scheduled sound; `sound_may_start(now)` tells the engine the
    earliest wall time a sound may start so that it never sounds before the amplifier
    has had its `lead_s`.
    """

    def __init__(self, amplifier: Amplifier, *, lead_s: float, idle_s: float) -> None:
        if lead_s < 0 or idle_s < 0:
            raise ValueError(f"amplifier lead_s={lead_s} and idle_s={idle_s} must be >= 0")
        self.amplifier = amplifier
        self.lead_s = lead_s
        self.idle_s = idle_s
        self._on_since: float | None = None if not amplifier.is_on else float("-inf")
        self._last_sound: float | None = None

    def sound_may_start(self, now: float, lead_s: float | None = None) -> float:
        """Earliest wall time sound may start if the amplifier is switched on at `now`.

        `lead_s` (at most the configured lead) lets an emergency accept a shorter
        settling time than a scheduled item."""
        lead = self.lead_s if lead_s is None else min(lead_s, self.lead_s)
        if self._on_since is not None:
            return max(now, self._on_since + lead)
        return now + lead

    def update(self, now: float, *, playing: bool, next_start: float | None) -> None:
        """Switch on for sound that is playing or due within `lead_s`; off after idle."""
        if playing:
            self._last_sound = now
        due = next_start is not None and next_start - self.lead_s <= now
        if playing or due:
            if self._on_since is None:
                self.amplifier.on()
                self._on_since = now
            return
        if self._on_since is None:
            return
        quiet_since = self._last_sound if self._last_sound is not None else self._on_since
        if now - quiet_since >= self.idle_s:
            self.amplifier.off()
            self._on_since = None
            self._last_sound = None
