"""A USB serial relay board on the far end of a socat pty pair: records every byte it is
sent, and answers a status query with the reply for its current state."""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path


class RelaySim:
    def __init__(
        self,
        path: Path,
        *,
        on: bytes,
        off: bytes,
        query: bytes = b"",
        on_reply: bytes = b"",
        off_reply: bytes = b"",
    ) -> None:
        self.on, self.off, self.query = on, off, query
        self.on_reply, self.off_reply = on_reply, off_reply
        self.received = bytearray()
        self.closed = False  # the relay contact
        self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="relay-sim", daemon=True)

    def __enter__(self) -> RelaySim:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self._fd)

    def bytes_seen(self) -> bytes:
        with self._lock:
            return bytes(self.received)

    def _serve(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(self._fd, 256)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.received += chunk
            pending += chunk
            for seq, action in ((self.on, "on"), (self.off, "off"), (self.query, "query")):
                while seq and seq in pending:
                    pending = pending.split(seq, 1)[1]
                    if action == "on":
                        self.closed = True
                    elif action == "off":
                        self.closed = False
                    else:
                        os.write(self._fd, self.on_reply if self.closed else self.off_reply)
