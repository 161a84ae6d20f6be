"""Amplifier power through a USB serial relay board (CH340 "LCUS" boards and the like).

Such boards switch on a fixed byte sequence (`A0 01 01 A2` on, `A0 01 00 A1` off for an
LCUS-1) that the sellers print on the box, so the sequences come from the configuration.
Some answer a status query; where they do (`query_bytes` with `on_reply`/`off_reply`)
the relay's real state is read back, otherwise only what was asked is known.

A failed write never raises into the audio engine (a broken relay must not silence the
speaker's bookkeeping, and the amplifier may well be wired always-on): it is logged,
the port closed, and the next switch opens it again.
"""

from __future__ import annotations

import contextlib
import logging
import termios
import time
from typing import Any

log = logging.getLogger(__name__)


class SerialRelayAmplifier:
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
        if not on_bytes or not off_bytes or on_bytes == off_bytes:
            raise ValueError("serial relay needs distinct, non-empty on and off byte sequences")
        if query_bytes and not (on_reply and off_reply):
            raise ValueError("a status query needs both on_reply and off_reply")
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
            log.error("amplifier relay %s: cannot switch %s: %s", self.port, what, e)
            self.close()

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
