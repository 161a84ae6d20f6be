"""scripts/dev-broker as a developer or technician runs it: prints where things are,
serves devices, re-reads the devices file on `reload`, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import anyio
import pytest
from support.broker import mqtt_client, next_message

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@dataclass
class Printed:
    """What the script told the user, enough for mqtt_client to log in with."""

    workdir: Path
    port: int
    mtls_port: int
    ca_file: Path
    hostname: str = "localhost"

    def password(self, user: str) -> str:
        return (self.workdir / "passwords" / f"{user}.pass").read_text().strip()


def _read_banner(proc: subprocess.Popen[bytes], timeout: float = 10) -> str:
    # Raw reads on the fd: a buffered readline would hide data from select().
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    out, deadline = b"", time.monotonic() + timeout
    while b"Ctrl-C stops" not in out:
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, f"no banner; got {out!r}"
        if select.select([fd], [], [], left)[0]:
            out += os.read(fd, 4096)
    return out.decode()


def _as_from_a_terminal() -> None:
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Printed]]:
    devices = tmp_path / "devices.toml"
    devices.write_text('[[device]]\nid = "dev-0001"\ngroups = ["vn-48"]\n')
    proc = subprocess.Popen(
        [str(SCRIPTS / "dev-broker"), str(tmp_path / "b"), "--devices", str(devices)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
        # As from a terminal, whatever started the suite: Ctrl-C (SIGINT) not ignored (a
        # background job of a script inherits it ignored), and its own process group, so
        # a broker that does not stop is killed with its Mosquitto.
        preexec_fn=_as_from_a_terminal,
    )
    try:
        banner = _read_banner(proc)
        m = re.search(r"mqtts://localhost:(\d+)\s+\(mTLS: mqtts://localhost:(\d+)\)", banner)
        ca = re.search(r"CA\s+(\S+)", banner)
        assert m and ca, banner
        assert f"{tmp_path / 'b' / 'passwords'}/<user>.pass" in banner
        yield proc, Printed(tmp_path / "b", int(m[1]), int(m[2]), Path(ca[1]))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


async def test_dev_broker_serves_reloads_and_stops_on_ctrl_c(
    running: tuple[subprocess.Popen[bytes], Printed], tmp_path: Path
) -> None:
    proc, b = running
    async with mqtt_client(b, "central") as console, mqtt_client(b, "dev-0001") as dev:
        await dev.subscribe("tcs/v1/grp/vn-48/cmd", qos=1)
        await console.publish("tcs/v1/grp/vn-48/cmd", b"hello", qos=1)
        assert (await next_message(dev)).payload == b"hello"

    # A technician adds a device to the file and asks for a reload.
    (tmp_path / "devices.toml").write_text(
        '[[device]]\nid = "dev-0001"\ngroups = ["vn-48"]\n'
        '[[device]]\nid = "dev-0007"\ngroups = ["vn-48"]\n'
    )
    subprocess.run(
        [str(SCRIPTS / "devbroker.py"), "reload", "--dir", str(b.workdir)], check=True, timeout=10
    )
    with anyio.fail_after(10):
        while (
            not (b.workdir / "passwords" / "dev-0007.pass").exists()
            or "dev-0007" not in (b.workdir / "acl").read_text()
        ):
            await anyio.sleep(0.05)
        while True:  # the reload is asynchronous: retry until the broker knows dev-0007
            try:
                async with mqtt_client(b, "dev-0007"):
                    break
            except aiomqtt.MqttCodeError:
                await anyio.sleep(0.1)

    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    with pytest.raises(OSError):  # Mosquitto went with it
        socket.create_connection(("127.0.0.1", b.port), timeout=1).close()
    assert not (b.workdir / "devbroker.pid").exists()
