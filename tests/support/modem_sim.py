"""A cellular modem simulator on one end of a socat pty pair (the driver opens the other).

    with PtyPair(dev / "ttyUSB2") as pair, ModemSim(pair.sim_end) as sim:
        sim.echo = True          # echo every command back, as after a modem reset
        sim.garbage = True       # noise and unsolicited lines around every answer
        sim.silent = True        # read commands, answer nothing (a hung firmware) …
        sim.hung_until_cfun = True  # … except AT+CFUN=1,1, which "restarts" it
        pair.vanish()            # kill socat: the port disappears (EIO on the driver's side)

`fake_usb_sysfs()` writes the sysfs entries `drivers.modem.find_port` reads, so the
same modem can "renumber" to another ttyUSB. Run as a script it serves a pty until
killed: `python tests/support/modem_sim.py /tmp/ttyUSB2` (for trying the driver by hand).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


class PtyPair:
    """`socat` joining two ptys, linked at `driver_end` and `driver_end`+".sim"."""

    def __init__(self, driver_end: Path) -> None:
        self.driver_end = driver_end
        self.sim_end = driver_end.with_name(driver_end.name + ".sim")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PtyPair:
        socat = shutil.which("socat")
        assert socat, "socat is required (scripts/setup.sh installs it)"
        self.proc = subprocess.Popen(
            [
                socat,
                f"pty,raw,echo=0,link={self.driver_end}",
                f"pty,raw,echo=0,link={self.sim_end}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not (self.driver_end.exists() and self.sim_end.exists()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"socat did not make the pty pair {self.driver_end}")
            time.sleep(0.01)
        return self

    def vanish(self) -> None:
        """The USB modem is unplugged: both ends close and the links go away."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        for link in (self.driver_end, self.sim_end):
            link.unlink(missing_ok=True)

    def __enter__(self) -> PtyPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.vanish()


def fake_usb_sysfs(sys_root: Path, tty: str, *, vid: str = "2c7c", pid: str = "0125") -> None:
    """sysfs of one USB modem whose AT interface (:1.2) is `tty` (e.g. "ttyUSB2")."""
    base = sys_root / "bus/usb/devices"
    shutil.rmtree(base, ignore_errors=True)
    dev = base / "1-1.3"
    dev.mkdir(parents=True)
    (dev / "idVendor").write_text(vid + "\n")
    (dev / "idProduct").write_text(pid + "\n")
    for n in range(4):  # interfaces 0..3; only 2 speaks AT
        intf = base / f"1-1.3:1.{n}"
        intf.mkdir()
        (intf / f"ttyUSB{int(tty.removeprefix('ttyUSB')) - 2 + n}").mkdir()
    other = base / "1-1.2"  # an unrelated USB device (a sound card) with a tty of its own
    other.mkdir()
    (other / "idVendor").write_text("0d8c\n")
    (other / "idProduct").write_text("0014\n")
    (base / "1-1.2:1.2").mkdir()
    (base / "1-1.2:1.2" / "ttyUSB9").mkdir()


class ModemSim:
    """Answers AT commands like a Quectel-style modem, with switchable misbehaviour."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.echo = False
        self.garbage = False
        self.silent = False
        self.hung_until_cfun = False
        self.csq = "20,99"
        self.operator = "Viettel"
        self.cclk = '"26/12/01,22:30:00+28"'
        self.received: list[str] = []
        self.resets = 0
        self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="modem-sim", daemon=True)

    def start(self) -> ModemSim:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self._fd)

    def __enter__(self) -> ModemSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send(self, data: bytes) -> None:
        try:
            os.write(self._fd, data)
        except OSError:
            self._stop.set()  # the pair is gone

    def _serve(self) -> None:
        buf = b""
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
            buf += chunk
            while b"\r" in buf:
                raw, buf = buf.split(b"\r", 1)
                cmd = raw.strip(b"\n ").decode("ascii", "replace")
                if cmd:
                    self.received.append(cmd)
                    self._answer(cmd)

    def _answer(self, cmd: str) -> None:
        if self.hung_until_cfun:
            if cmd.upper() == "AT+CFUN=1,1":
                self.hung_until_cfun = False
                self.resets += 1
                self._send(b"\r\nOK\r\n")
            return
        if self.silent:
            return
        out = b""
        if self.echo:
            out += cmd.encode() + b"\r"
        if self.garbage:
            out += b"\x00\xff\xfe~~\r\n\r\nRING\r\n+CREG: 1\r\n"
        out += self._reply(cmd.upper())
        if self.garbage:
            out += b'\r\n+CMTI: "SM",3\r\n'
        self._send(out)

    def _reply(self, cmd: str) -> bytes:
        answers: dict[str, Any] = {
            "AT": "",
            "ATE0": "",
            "AT+CTZU=1": "",
            "AT+CSQ": f"+CSQ: {self.csq}",
            "AT+COPS?": f'+COPS: 0,0,"{self.operator}",7',
            "AT+CREG?": "+CREG: 0,1",
            "AT+CCLK?": f"+CCLK: {self.cclk}",
            "AT+CFUN=1,1": "",
        }
        if cmd == "AT+CFUN=1,1":
            self.resets += 1
        if cmd not in answers:
            return b"\r\nERROR\r\n"
        info = answers[cmd]
        return (f"\r\n{info}\r\n" if info else "").encode() + b"\r\nOK\r\n"


if __name__ == "__main__":
    with PtyPair(Path(sys.argv[1])) as pair, ModemSim(pair.sim_end) as sim:
        print(f"modem on {pair.driver_end}; Ctrl-C to stop", flush=True)
        try:
            while pair.proc is not None and pair.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
