"""Amplifier (or screen) power through one GPIO line, via the kernel's GPIO character device.

Uses libgpiod's Python bindings (`gpiod` 2.x, PyPI; the sysfs GPIO interface is gone
from current kernels) behind `GpioLine`, the only three things the driver needs, so
tests run with a fake line and the library is imported only when `[amplifier] kind =
"gpio"`. The line is requested as an output held inactive (amplifier off) from the
start; its value is read back from the kernel, which reports what the line drives.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)


class GpioLine(Protocol):
    def set(self, active: bool) -> None: ...

    def get(self) -> bool: ...

    def release(self) -> None: ...


class GpioUnavailable(RuntimeError):
    """The gpiod library or the chip is missing; the message says what to do."""


class _GpiodLine:
    def __init__(self, chip: str, line: int, *, active_low: bool) -> None:
        try:
            import gpiod
            from gpiod.line import Direction, Value
        except ImportError as e:
            raise GpioUnavailable(
                "[amplifier] kind = gpio needs libgpiod's Python bindings: "
                "pip install 'gpiod>=2' in the agent's venv (tcs-agent[gpio])"
            ) from e
        self._value = Value
        settings = gpiod.LineSettings(
            direction=Direction.OUTPUT, output_value=Value.INACTIVE, active_low=active_low
        )
        try:
            self._req: Any = gpiod.request_lines(
                chip, consumer="tcs-agent-amplifier", config={line: settings}
            )
        except OSError as e:
            raise GpioUnavailable(f"{chip} line {line}: {e.strerror or e}") from e
        self._line = line

    def set(self, active: bool) -> None:
        self._req.set_value(self._line, self._value.ACTIVE if active else self._value.INACTIVE)

    def get(self) -> bool:
        return bool(self._req.get_value(self._line) == self._value.ACTIVE)

    def release(self) -> None:
        self._req.release()


def open_line(chip: str, line: int, *, active_low: bool) -> GpioLine:
    """Request `line` on `chip` (e.g. /dev/gpiochip0) as an output, inactive."""
    return _GpiodLine(chip, line, active_low=active_low)


class GpioAmplifier:
    @staticmethod
    def settings_problems(*, chip: str, line: int | None) -> dict[str, str]:
        """What the driver would refuse, by setting (empty: all accepted); `line` None
        when not configured. Asked by `tcs-agent config check` for `[amplifier]` and
        `[display.relay]` alike."""
        problems: dict[str, str] = {}
        if line is None or line < 0:
            problems["line"] = "missing: the GPIO line offset on the chip (e.g. 17 for GPIO17)"
        if not chip.startswith("/dev/gpiochip"):
            problems["chip"] = f"{chip!r} must be a GPIO character device such as /dev/gpiochip0"
        return problems

    def __init__(self, line: GpioLine) -> None:
        self._line = line
        self._commanded = False
        self.last_error: str | None = None  # why the last switch failed; None once one works

    @property
    def is_on(self) -> bool:
        return self._commanded

    def on(self) -> None:
        self._commanded = True
        self._switch(True)

    def off(self) -> None:
        self._commanded = False
        self._switch(False)

    def _switch(self, active: bool) -> None:
        what = "on" if active else "off"
        try:
            self._line.set(active)
        except OSError as e:  # never raise into the audio engine; the state probe shows it
            log.error("GPIO relay: cannot switch %s: %s", what, e)
            self.last_error = f"GPIO line: cannot switch {what}: {e.strerror or e}"
        else:
            self.last_error = None

    def read_back(self) -> bool | None:
        try:
            return self._line.get()
        except OSError:
            return None

    def close(self) -> None:
        self._line.release()
