"""Screen power and brightness: HDMI-CEC, DPMS blanking, sysfs backlight, and the pure
policy that decides them from the time of day and emergencies.

A screen switched off on schedule is *deliberately off*, reported as power "off"; a
screen whose switch failed is "failed". The province's dashboard can tell a board
that is dark on purpose at 23:00 from a broken one. An emergency always switches the
screen on, whatever the schedule says.

Switches run external commands or write sysfs files: call them from a worker thread.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from agent.config import BrightnessStep, DisplayConfig, QuietHours

log = logging.getLogger(__name__)

Power = Literal["on", "off", "failed"]
RETRY_S = 30.0  # a failed screen switch is tried again this often (an emergency: at once)


class ScreenError(Exception):
    """The screen could not be switched or dimmed."""


class ScreenSwitch(Protocol):
    name: str

    def on(self) -> None: ...

    def off(self) -> None: ...


class NullSwitch:
    """No way to switch the screen: "off" only stops drawing (the presenter goes dark)."""

    name = "none"

    def on(self) -> None:
        return None

    def off(self) -> None:
        return None


class CecSwitch:
    """HDMI-CEC through libcec's `cec-client` in single-command mode (`-s`).

    On: `on 0` (wake the TV, logical address 0) then `as` (make us the active source,
    so the TV shows our input). Off: `standby 0`. Each is one short process; a TV that
    does not answer makes cec-client exit non-zero, which is a failure.
    """

    name = "cec"

    def __init__(self, *, binary: str = "cec-client", timeout_s: float = 20.0) -> None:
        self.binary = binary
        self.timeout_s = timeout_s

    def _send(self, command: str) -> None:
        exe = shutil.which(self.binary)
        if exe is None:
            raise ScreenError(f"{self.binary} not found (Debian package cec-utils)")
        try:
            done = subprocess.run(
                [exe, "-s", "-d", "1"],
                input=command + "\n",
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ScreenError(
                f"cec-client {command!r}: no answer in {self.timeout_s:g} s"
            ) from None
        except OSError as e:
            raise ScreenError(f"cec-client: {e.strerror or e}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ScreenError(f"cec-client {command!r} failed ({done.returncode}): {tail[0]}")

    def on(self) -> None:
        self._send("on 0")
        self._send("as")

    def off(self) -> None:
        self._send("standby 0")


class MatrixSwitch:
    """An LED matrix's own shutdown mode (MAX7219 register 0x0C)."""

    name = "matrix"

    def __init__(self, set_lit: Callable[[bool], None]) -> None:
        self._set_lit = set_lit

    def on(self) -> None:
        self._set_lit(True)

    def off(self) -> None:
        self._set_lit(False)


class DpmsSwitch:
    """The framebuffer's own blanking (`/sys/class/graphics/fbN/blank`): 0 unblank,
    4 powerdown, which DPMS-capable monitors turn into standby."""

    name = "dpms"

    def __init__(self, blank_file: Path) -> None:
        self.blank_file = blank_file

    @classmethod
    def for_framebuffer(cls, device: str, sysfs: Path = Path("/sys/class/graphics")) -> DpmsSwitch:
        return cls(sysfs / Path(device).name / "blank")

    def _write(self, value: str) -> None:
        try:
            self.blank_file.write_text(value)
        except OSError as e:
            raise ScreenError(f"{self.blank_file}: {e.strerror or e}") from None

    def on(self) -> None:
        self._write("0")

    def off(self) -> None:
        self._write("4")


class RelaySwitch:
    """A relay in the screen's power lead, driven by the amplifier's relay drivers
    (drivers/amp_serial.py, drivers/amp_gpio.py: one implementation of each board).

    Those drivers never raise (a broken relay must not upset the audio engine); they
    keep `last_error`, which is turned into a ScreenError here so that the screen is
    reported "failed", not "off". Where the relay's state can be read back (a serial
    board with a status query, a GPIO line), a relay that did not follow is a failure too.
    """

    name = "relay"

    def __init__(self, relay: object) -> None:
        self.relay = relay

    def _switch(self, on: bool) -> None:
        what = "on" if on else "off"
        try:
            getattr(self.relay, what)()
        except Exception as e:  # a driver fault is the screen's failure, never the agent's
            raise ScreenError(f"relay {what}: {e}") from None
        error = getattr(self.relay, "last_error", None)
        if error:
            raise ScreenError(f"relay {what}: {error}")
        if not getattr(self.relay, "can_read_back", True):
            return
        reader = getattr(self.relay, "read_back", None)
        if callable(reader):
            state = reader()
            if state is None:
                raise ScreenError(f"relay {what}: its state could not be read back")
            if state is not on:
                raise ScreenError(f"relay {what}: the relay reports {'on' if state else 'off'}")

    def on(self) -> None:
        self._switch(True)

    def off(self) -> None:
        self._switch(False)

    def close(self) -> None:
        close = getattr(self.relay, "close", None)
        if callable(close):
            close()


class BrokenSwitch:
    """A switch that could not be built (missing library, GPIO chip): every switch fails
    with the reason, so the heartbeat says "failed" and why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def on(self) -> None:
        raise ScreenError(self.reason)

    def off(self) -> None:
        raise ScreenError(self.reason)


class Backlight:
    """`/sys/class/backlight/NAME`: brightness as a percent of max_brightness."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.max = int((folder / "max_brightness").read_text().strip())
        except (OSError, ValueError) as e:
            raise ScreenError(f"{folder}: no usable max_brightness ({e})") from None

    @classmethod
    def find(cls, name: str = "", root: Path = Path("/sys/class/backlight")) -> Backlight | None:
        """The named backlight, or the first present; None when the board has none."""
        if name:
            return cls(Path(name) if "/" in name else root / name)
        try:
            folders = sorted(p for p in root.iterdir() if (p / "max_brightness").exists())
        except OSError:
            return None
        return cls(folders[0]) if folders else None

    def set_percent(self, level: int) -> None:
        value = round(self.max * max(0, min(100, level)) / 100)
        try:
            (self.folder / "brightness").write_text(str(value))
        except OSError as e:
            raise ScreenError(f"{self.folder}/brightness: {e.strerror or e}") from None


# ------------------------------------------------------------------ policy (pure)


def brightness_at(steps: Sequence[BrightnessStep], minute_of_day: int) -> int:
    """Brightness % at a local minute: the last step at or before it, wrapping midnight."""
    if not steps:
        return 100
    current = steps[-1].level  # before the day's first step, last night's step holds
    for step in steps:
        if step.start_min <= minute_of_day:
            current = step.level
    return current


@dataclass(frozen=True, slots=True)
class Wanted:
    on: bool
    reason: str  # "schedule", "off_hours", "emergency", "always"
    brightness: int


def wanted(
    local: datetime,
    *,
    on_hours: QuietHours | None,
    steps: Sequence[BrightnessStep],
    emergency: bool,
) -> Wanted:
    """What the screen should be doing at local time `local`."""
    minute = local.hour * 60 + local.minute
    if emergency:
        return Wanted(True, "emergency", 100)
    level = brightness_at(steps, minute)
    if on_hours is None:
        return Wanted(True, "always", level)
    if on_hours.contains(minute):
        return Wanted(True, "schedule", level)
    return Wanted(False, "off_hours", level)


class ScreenPower:
    """Applies `Wanted` states to a switch and an optional dimmer; remembers the state
    for the heartbeat. Only changes are sent (a CEC command takes seconds)."""

    def __init__(
        self,
        switch: ScreenSwitch,
        *,
        dimmer: Backlight | None = None,
        contrast: Callable[[int], None] | None = None,
        retry_s: float = RETRY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.switch = switch
        self.dimmer = dimmer
        self._set_contrast = contrast  # LED matrices: intensity 0-255
        self.power: Power | None = None
        self.reason = ""
        self.brightness: int | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self.retry_s = retry_s
        self._mono = monotonic
        self._failed_at = float("-inf")

    def apply(self, want: Wanted, base_contrast: int = 0x70) -> None:
        # The watch round and an emergency's immediate switch-on may both get here from
        # worker threads: one switch command at a time, each against the latest state.
        with self._lock:
            self._apply(want, base_contrast)

    def _apply(self, want: Wanted, base_contrast: int) -> None:
        target: Power = "on" if want.on else "off"
        # A failed switch is retried every `retry_s` (a CEC command or an unplugged relay
        # costs seconds and a log line per try), at once for an emergency.
        waiting = self.power == "failed" and self._mono() - self._failed_at < self.retry_s
        if target != self.power and (not waiting or want.reason == "emergency"):
            try:
                (self.switch.on if want.on else self.switch.off)()
            except ScreenError as e:
                if str(e) != self.error:
                    log.warning("screen %s: %s", target, e)
                self.power, self.error = "failed", str(e)
                self._failed_at = self._mono()
            else:
                self.power, self.error = target, None
        self.reason = want.reason
        if want.brightness != self.brightness:
            self._dim(want.brightness, base_contrast)

    def _dim(self, level: int, base_contrast: int) -> None:
        try:
            if self.dimmer is not None:
                self.dimmer.set_percent(level)
            if self._set_contrast is not None:
                self._set_contrast(round(base_contrast * level / 100))
        except ScreenError as e:
            self.error = str(e)
            return
        self.brightness = level

    def report(self) -> dict[str, object]:
        """For the heartbeat's `display`: power on/off(deliberate)/failed, why, brightness."""
        return {
            "power_control": self.switch.name,
            "power": self.power,
            "power_reason": self.reason,
            "brightness": self.brightness,
            "power_error": self.error,
        }


def switch_for(config: DisplayConfig) -> ScreenSwitch:
    if config.power_control == "cec":
        return CecSwitch()
    if config.power_control == "dpms" and config.kind == "framebuffer":
        return DpmsSwitch.for_framebuffer(config.path)
    return NullSwitch()
