"""The rest of the command line: acl, flags without a config file (mTLS), TTY drawing."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.broker import mqtt_client, next_message
from support.central import Console

from agent.central.acl import DeviceEntry
from agent.central.cli import main
from agent.central.sign import verify_eddsa
from agent.central.table import Board, LogLine
from agent.central.watch import CLEAR, LOUD, Printer


def test_acl_subcommand_prints_the_rendered_acl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = tmp_path / "devices.toml"
    devices.write_text('[[device]]\nid = "dev-0001"\ngroups = ["vn-48-490"]\n')
    assert main(["acl", str(devices), "--console-user", "central"]) == 0
    out = capsys.readouterr().out
    assert "user dev-0001" in out and "topic read tcs/v1/grp/vn-48-490/cmd" in out
    assert "user central" in out
    devices.write_text('[[device]]\nid = "dev/0001"\n')
    assert main(["acl", str(devices)]) == 2
    assert "dev/0001" in capsys.readouterr().err


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_send_with_flags_only_over_mtls(broker: Any, console: Console) -> None:
    cert, key = broker.client_cert("central")
    signing = console.settings.signing
    assert signing is not None
    async with mqtt_client(broker, "dev-0001") as dev:
        await dev.subscribe("tcs/v1/dev/dev-0001/cmd", qos=1)
        # main() runs its own event loop: give it a thread so ours keeps receiving.
        code = await anyio.to_thread.run_sync(main, [
            "send", "--broker", broker.mtls_url, "--ca-file", str(broker.ca_file),
            "--cert-file", str(cert), "--tls-key-file", str(key),
            "--kid", signing.kid, "--signing-key", str(signing.key_file), "--issuer", "vn-48",
            "--device", "dev-0001", "status.request", "--jti", "fixed-jti-1",
            "--connect-timeout", "5",
        ])
        assert code == 0
        msg = await next_message(dev, timeout=5)
    assert isinstance(msg.payload, bytes)
    claims = verify_eddsa(msg.payload.decode(), console.trust_public)
    assert claims is not None and claims["jti"] == "fixed-jti-1"
    assert claims["cmd"] == "status.request" and claims["args"] == {}


def test_tty_redraws_the_screen_with_loud_lines_highlighted() -> None:
    board = Board([DeviceEntry("dev-0001")], {})
    out = io.StringIO()
    now = time.monotonic()
    printer = Printer(board, out, io.StringIO(), tty=True, json_out=False, clock=lambda: now)
    printer.log(LogLine("proof", "dev-0001", "!!! proof dev-0001 FORGED !!!", loud=True))
    assert out.getvalue() == ""  # logged lines wait for the next redraw
    printer.redraw()
    screen = out.getvalue()
    assert screen.startswith(CLEAR)
    assert "dev-0001" in screen and f"{LOUD}!!! proof dev-0001 FORGED !!!" in screen
