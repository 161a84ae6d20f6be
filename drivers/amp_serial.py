"""Amplifier power through a USB serial relay board (CH340 "LCUS" boards and the like).

Such boards switch on a fixed byte sequence (`A0 01 01 A2` on, `A0 01 00 A1` off for an
LCUS-1) that the sellers print on the box, so the sequences come from the configuration.
Some answer a status query; where they do (`query_bytes` with `on_reply`/`off_reply`)
the relay's real state is read back, otherwise only what was asked is known.

A failed write never raises into the audio engine (a broken relay must not silence the
speaker's bookkeeping, and the amplifier may well be wired always-on): it is logged,
the port closed, and the next switch opens it again; `last_error` says why until a
switch succeeds (a screen switched by the same kind of relay reports it, drivers/screen.py).
"""

from __future__ import annotations

import contextlib
import logging
import termios
import time
from typing import Any

log = logging.getLogger(__name__)


class SerialRelayAmplifier:
    @staticmethod
    def settings_problems(
        *,
        port: str,
        on_bytes: bytes,
        off_bytes: bytes,
        query_bytes: bytes = b"",
        on_reply: bytes = b"",
        off_reply: bytes = b"",
    ) -> dict[str, str]:
        """What the driver would refuse, by setting (empty: all accepted). `tcs-agent
        config check` asks this for `[amplifier]` and `[display.relay]` alike."""
        problems: dict[str, str] = {}
        if not port.strip():
            problems["port"] = (
                "must name the relay board's serial port, e.g. /dev/serial/by-id/usb-…"
            )
        elif not port.startswith("/dev/") and not port.startswith("/"):
            problems["port"] = f"{port!r} must be an absolute device path such as /dev/ttyUSB0"
        missing = 'missing: the bytes that switch the relay, as hex (e.g. "A0 01 01 A2")'
        if not on_bytes:
            problems["on_bytes"] = missing
        if not off_bytes:
            problems["off_bytes"] = missing
        elif on_bytes == off_bytes:
            problems["off_bytes"] = "is the same as on_bytes: the relay could never be told apart"
        replies = (bool(on_reply), bool(off_reply))
        if query_bytes and replies != (True, True):
            problems["query_bytes"] = "needs both on_reply and off_reply to read the state back"
        elif not query_bytes and any(replies):
            problems["query_bytes"] = "missing: on_reply/off_reply are answers to a status query"
        return problems

    def __init__(
        self,
        port: str,
        *,
        baud: int,
        on_bytes: bytes,
        off_bytes: bytes,
        query_bytes: bytes = b"",
        on_reply: bytes = b"",
        off_reply: bytes = b"",
        timeout_s: float = 1.0,
    ) -> None:
        problems = self.settings_problems(
            port=port, on_bytes=on_bytes, off_bytes=off_bytes, query_bytes=query_bytes,
            on_reply=on_reply, off_reply=off_reply,
        )  # fmt: skip
        if problems:
            raise ValueError("; ".join(f"serial relay {k} {v}" for k, v in problems.items()))
        import serial  # optional hardware library: imported only when configured

        self._serial = serial
        self._errors: tuple[type[Exception], ...] = (
            serial.SerialException,
            OSError,
            termios.error,
        )
        self.port = port
        self.baud = baud
        self.on_bytes, self.off_bytes = on_bytes, off_bytes
        self.query_bytes, self.on_reply, self.off_reply = query_bytes, on_reply, off_reply
        self.timeout_s = timeout_s
        self._port: Any = None
        self._commanded = False
        self.last_error: str | None = None  # why the last switch failed; None once one works

    @property
    def is_on(self) -> bool:
        """What was last asked for (the relay starts off: the agent switches it on for sound)."""
        return self._commanded

    @property
    def can_read_back(self) -> bool:
        """Whether the board was given a status query (else only `is_on` is known)."""
        return bool(self.query_bytes)

    def on(self) -> None:
        self._commanded = True
        self._write(self.on_bytes, "on")

    def off(self) -> None:
        self._commanded = False
        self._write(self.off_bytes, "off")

    def close(self) -> None:
        if self._port is not None:
            with contextlib.suppress(Exception):
                self._port.close()
            self._port = None

    def _open(self) -> Any:
        if self._port is None:
            self._port = self._serial.Serial(
                self.port, self.baud, timeout=0.05, write_timeout=self.timeout_s
            )
        return self._port

    def _write(self, data: bytes, what: str) -> None:
        try:
            port = self._open()
            port.write(data)
            port.flush()
        except self._errors as e:
            log.error("relay %s: cannot switch %s: %s", self.port, what, e)
            self.last_error = f"{self.port}: cannot switch {what}: {e}"
            self.close()
        else:
            self.last_error = None

    def read_back(self) -> bool | None:
        """The relay's state as the board reports it; None when it cannot say (no query,
        no answer, or an answer that is neither on_reply nor off_reply)."""
        if not self.query_bytes:
            return None
        try:
            port = self._open()
            port.reset_input_buffer()
            port.write(self.query_bytes)
            port.flush()
            want = max(len(self.on_reply), len(self.off_reply))
            got = b""
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                got += port.read(want - len(got) if len(got) < want else 1)
                for reply, state in ((self.on_reply, True), (self.off_reply, False)):
                    if got.endswith(reply):
                        return state
                if len(got) > 4 * want:
                    return None  # noise, not an answer
        except self._errors as e:
            log.warning("amplifier relay %s: state query failed: %s", self.port, e)
            self.close()
        return None
