"""What the link writes to the journal while the broker is unreachable, as a technician
reads it: which broker, why, when the next attempt is; the untrusted-clock warning
once (not at every retry); and a line when the link stops."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from support.config import make_tls_files

from agent.link import Announcement, Link, LinkSettings

pytestmark = pytest.mark.timeout(120)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_retries_name_host_and_delay_and_clock_warning_is_said_once(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path)
    port = _closed_port()
    settings = LinkSettings(
        client_id="dev-0001", host="127.0.0.1", port=port, tls=True, username=None,
        password=None, ca_file=str(tls.ca), cert_file=None, key_file=None, keepalive_s=30,
        session_expiry_s=86400, connect_timeout_s=2.0,
    )

    async def noop(_: object) -> None:
        return None

    link = Link(settings, subscriptions=["tcs/v1/dev/dev-0001/cmd"],
                announcement=Announcement("tcs/v1/dev/dev-0001/state", lambda: b"{}", b"{}"),
                on_message=noop, clock_trusted=lambda: False)
    records = _Records()
    logger = logging.getLogger("agent.link")
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)

    def retries() -> list[str]:
        return [line for line in records.lines if "unreachable" in line]

    async def scenario() -> None:
        task = asyncio.create_task(link.run())
        while len(retries()) < 3:  # polled; the back-off is jittered
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(scenario())
    finally:
        logger.removeHandler(records)
    for line in retries():
        assert f"broker 127.0.0.1:{port} unreachable" in line
        assert "next in" in line and line.rstrip().endswith(" s")
    clock = [line for line in records.lines if "wall clock not trusted" in line]
    assert len(clock) == 1, records.lines
    assert records.lines[-1] == f"link to 127.0.0.1:{port} stopped"
