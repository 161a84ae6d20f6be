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

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from support.ptys import PtyPair, PtyPeer

__all__ = ["ModemSim", "PtyPair", "fake_usb_sysfs"]


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


class ModemSim(PtyPeer):
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
        self._buf = b""
        super().__init__(path, "modem-sim")

    def __enter__(self) -> ModemSim:
        self.start()
        return self

    def on_chunk(self, chunk: bytes) -> None:
        self._buf += chunk
        while b"\r" in self._buf:
            raw, self._buf = self._buf.split(b"\r", 1)
            cmd = raw.strip(b"\n ").decode("ascii", "replace")
            if cmd:
                self.received.append(cmd)
                self._answer(cmd)

    def _answer(self, cmd: str) -> None:
        if self.hung_until_cfun:
            if cmd.upper() == "AT+CFUN=1,1":
                self.hung_until_cfun = False
                self.resets += 1
                self.send(b"\r\nOK\r\n")
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
        self.send(out)

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
