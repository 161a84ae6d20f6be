"""A USB serial relay board on the far end of a socat pty pair: records every byte it is
sent, and answers a status query with the reply for its current state."""

from __future__ import annotations

import threading
from pathlib import Path

from support.ptys import PtyPeer


class RelaySim(PtyPeer):
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
        self._pending = b""
        self._lock = threading.Lock()
        super().__init__(path, "relay-sim")

    def __enter__(self) -> RelaySim:
        self.start()
        return self

    def bytes_seen(self) -> bytes:
        with self._lock:
            return bytes(self.received)

    def on_chunk(self, chunk: bytes) -> None:
        with self._lock:
            self.received += chunk
        self._pending += chunk
        for seq, action in ((self.on, "on"), (self.off, "off"), (self.query, "query")):
            while seq and seq in self._pending:
                self._pending = self._pending.split(seq, 1)[1]
                if action == "on":
                    self.closed = True
                elif action == "off":
                    self.closed = False
                else:
                    self.send(self.on_reply if self.closed else self.off_reply)
