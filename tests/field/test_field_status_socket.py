"""The status socket survives bad clients: garbage, unknown requests, silence."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from agent.status_server import StatusServer, request


async def ok_status() -> dict[str, Any]:
    return {"device": "dev-0001"}


async def tone() -> dict[str, Any]:
    return {"ok": True, "detail": "tone played"}


def raw(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return s.recv(65536)


@pytest.mark.anyio
async def test_bad_requests_get_errors_and_good_ones_still_work(tmp_path: Path) -> None:
    path = tmp_path / "status.sock"
    path.write_text("")  # a non-socket file in the way is not removed …
    server = StatusServer(path, status=ok_status, tests={"speaker": tone})
    with pytest.raises(OSError):
        await server.start()
    path.unlink()
    await server.start()
    try:
        for data, says in [
            (b"\xff\xfe garbage\n", b"not JSON"),
            (b"[1, 2]\n", b"JSON object"),
            (b'{"op": "reboot"}\n', b"unknown op"),
            (b'{"op": "test", "what": "kettle"}\n', b"no test"),
            (b"x" * 10000 + b"\n", b"too long"),
        ]:
            answer = await asyncio.to_thread(raw, path, data)
            assert says in answer, (data[:20], answer)
        status = await asyncio.to_thread(request, path, {"op": "status"})
        assert status == {"status": {"device": "dev-0001"}}
        test = await asyncio.to_thread(request, path, {"op": "test", "what": "speaker"})
        assert test["test"]["ok"] is True
    finally:
        await server.stop()
    assert not path.exists()
