"""A real threaded HTTP media server for cache tests, with the failures of the field.

Each served path has a `Behaviour`: throttle, cut the connection after N body
bytes (once or every time), Range support on/off, wrong bytes, a lying
Content-Length, a fixed status (404/500), or hang. A `link_bps` throttle is
shared by every connection, like one 3G link shared by two agents. `restart()`
closes every connection and listens again on the same port. Every request is
logged (`requests`) with its Range start, status, bytes sent and times.

Used as a context manager; it never outlives the test.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
BLOCK = 16 * 1024


@dataclass
class Behaviour:
    rate_bps: float | None = None  # per-connection throttle (bytes/s)
    cut_after: int | None = None  # close the socket after this many body bytes
    cut_times: int = 1_000_000  # how many requests get cut (then serve normally)
    ranges: bool = True  # honour Range (else always 200 with the whole body)
    status: int | None = None  # answer with this status and a short body
    status_times: int = 1_000_000  # how many requests get `status`
    hang: bool = False  # accept, read the request, never answer
    hang_after: int | None = None  # send headers and this many bytes, then stall
    length: int | None = None  # Content-Length to announce (a lie if != len(body))


@dataclass
class Request:
    path: str
    range_start: int | None
    status: int
    t_received: float
    bytes_sent: int = 0
    t_done: float | None = None


class _Link:
    """Token bucket shared by all connections (thread-safe)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + n / self.rate
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class _Served:
    body: bytes
    behaviour: Behaviour
    hits: int = 0


class MediaServer:
    def __init__(self, *, link_bps: float | None = None) -> None:
        self._files: dict[str, _Served] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._link = _Link(link_bps) if link_bps else None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- setup -----------------------------------------------------------------

    def add(self, path: str, body: bytes, behaviour: Behaviour | None = None) -> str:
        with self._lock:
            self._files[path] = _Served(body, behaviour or Behaviour())
        return self.url(path)

    def set_behaviour(self, path: str, behaviour: Behaviour) -> None:
        with self._lock:
            self._files[path].behaviour = behaviour
            self._files[path].hits = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def served(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def bytes_sent(self, path: str) -> int:
        return sum(r.bytes_sent for r in self.served(path))

    # ---- lifecycle ---------------------------------------------------------------

    def start(self) -> MediaServer:
        self._stop.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (hung ones included)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def restart(self, down_s: float = 0.0) -> None:
        """Like a server process restarting: connections die, same port comes back."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the handler -------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with outer._lock:
                    outer._conns.add(self.connection)

            def finish(self) -> None:
                with outer._lock:
                    outer._conns.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _serve(self, *, head: bool) -> None:
                with outer._lock:
                    served = outer._files.get(self.path)
                    if served is not None:
                        served.hits += 1
                        hit = served.hits
                m = _RANGE.fullmatch(self.headers.get("Range", "") or "")
                rec = Request(self.path, int(m.group(1)) if m else None, 0, time.monotonic())
                with outer._lock:
                    outer.requests.append(rec)
                if served is None:
                    return self._status(rec, 404)
                b = served.behaviour
                if b.hang:
                    outer._stop.wait(60)
                    self.close_connection = True
                    return None
                if b.status is not None and hit <= b.status_times:
                    return self._status(rec, b.status)
                body = served.body
                start = 0
                code = 200
                if m and b.ranges:
                    start = int(m.group(1))
                    if start >= len(body):
                        return self._status(rec, 416)
                    code = 206
                rec.status = code
                self.send_response(code)
                self.send_header("Content-Type", "application/octet-stream")
                if b.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if code == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                length = b.length if b.length is not None else len(body) - start
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if head:
                    rec.t_done = time.monotonic()
                    return None
                cut = b.cut_after if (b.cut_after is not None and hit <= b.cut_times) else None
                self._send_body(rec, body[start:], b, cut)
                return None

            def _send_body(self, rec: Request, data: bytes, b: Behaviour, cut: int | None) -> None:
                t0 = time.monotonic()
                pos = 0
                try:
                    while pos < len(data):
                        if outer._stop.is_set():
                            break
                        if b.hang_after is not None and pos >= b.hang_after:
                            outer._stop.wait(60)
                            break
                        n = min(BLOCK, len(data) - pos)
                        if cut is not None:
                            n = min(n, cut - pos)
                            if n <= 0:
                                break
                        if b.hang_after is not None:
                            n = min(n, max(1, b.hang_after - pos))
                        if outer._link is not None:
                            outer._link.wait(n)
                        self.wfile.write(data[pos : pos + n])
                        pos += n
                        rec.bytes_sent = pos
                        if b.rate_bps:
                            ahead = t0 + pos / b.rate_bps - time.monotonic()
                            if ahead > 0:
                                time.sleep(ahead)
                    self.wfile.flush()
                except OSError:
                    pass
                finally:
                    rec.t_done = time.monotonic()
                if pos < len(data):
                    # Cut or stopped: drop the socket hard, mid-body.
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)

            def _status(self, rec: Request, code: int) -> None:
                rec.status = code
                body = f"status {code}\n".encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                rec.t_done = time.monotonic()

        return Handler


def corrupt(data: bytes, at: int) -> bytes:
    """`data` with one bit flipped at `at` (same size, different hash)."""
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
