"""The running agent's local status socket, for `tcs-agent status` and `tcs-agent test`.

A Unix stream socket in the storage folder, mode 0600, so only the agent's own user
(and root) can open it; no network listener. The peer's uid is checked again with
SO_PEERCRED, so a socket file made world-accessible by mistake still admits no one
else. One request per connection, one JSON line each way, bounded in size and time:
`{"op": "status"}` → the status object; `{"op": "test", "what": "speaker"}` → the test's
result. What the status holds is not known here: the service hands in narrow
callables (agent/status_view.py builds the status).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOCKET_NAME = "status.sock"
MAX_REQUEST = 4096
MAX_RESPONSE = 1 << 20
REQUEST_TIMEOUT_S = 5.0
_umask_lock = threading.Lock()

Status = Callable[[], Awaitable[dict[str, Any]]]
Action = Callable[[], Awaitable[dict[str, Any]]]


class StatusServer:
    def __init__(self, path: Path, *, status: Status, tests: Mapping[str, Action]) -> None:
        self.path = path
        self._status = status
        self._tests = dict(tests)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        sock = _bind_private(self.path)
        self._server = await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_REQUEST)
        log.info("status socket at %s", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None and not _peer_allowed(sock):
                return
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    line = await reader.readline()
            except (TimeoutError, ValueError, asyncio.LimitOverrunError):
                await _reply(writer, {"error": "request too slow or too long"})
                return
            await _reply(writer, await self._answer(line))
        except Exception:  # one bad client must never disturb the agent
            log.exception("status request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return {"error": "request is not JSON"}
        if not isinstance(req, dict):
            return {"error": "request must be a JSON object"}
        op = req.get("op")
        if op == "status":
            return {"status": await self._status()}
        if op == "test":
            what = req.get("what")
            action = self._tests.get(what) if isinstance(what, str) else None
            if action is None:
                return {"error": f"no test {what!r} here; known: {sorted(self._tests)}"}
            return {"test": await action()}
        return {"error": f"unknown op {op!r}"}


async def _reply(writer: asyncio.StreamWriter, doc: dict[str, Any]) -> None:
    data = json.dumps(doc, ensure_ascii=False, default=str).encode() + b"\n"
    if len(data) > MAX_RESPONSE:
        data = b'{"error": "status too large"}\n'
    writer.write(data)
    await writer.drain()


def _bind_private(path: Path) -> socket.socket:
    """A listening Unix socket at `path` that is 0600 from the moment it exists."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()  # left over from a crash; a non-socket file is not ours to remove
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # umask is process-wide: held only around bind(), and it only makes files stricter.
        with _umask_lock:
            old = os.umask(0o177)
            try:
                sock.bind(str(path))
            finally:
                os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(8)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _peer_allowed(sock: socket.socket) -> bool:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (0, os.geteuid())


def request(path: Path, doc: dict[str, Any], *, timeout_s: float = 30.0) -> dict[str, Any]:
    """Client side (blocking, for the CLI): send one request, return the answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(path))
        s.sendall(json.dumps(doc).encode() + b"\n")
        chunks = []
        total = 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_RESPONSE:
                raise ValueError("status answer too large")
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks))
    if not isinstance(answer, dict):
        raise ValueError("status answer is not a JSON object")
    return answer
