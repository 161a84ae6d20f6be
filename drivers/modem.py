"""A 3G/4G USB modem over AT commands: signal, operator, registration, network time.

Field modems are unreliable talkers: some echo every command back whatever ATE0 said,
unsolicited lines (`RING`, `+CREG: 1`) and line noise arrive between answers, a hung
firmware stops answering, and the USB port vanishes and comes back under another
ttyUSB number after a brown-out. So the port is found each time by the modem's USB
vendor/product id in sysfs (`/sys/bus/usb/devices/*/idVendor`), never by its number;
every exchange has a deadline; unknown lines are skipped; a port error closes the
port and the next probe looks for it again; and after `reset_after` failed probes in
a row the modem is restarted with `AT+CFUN=1,1` and an event says so.

Everything here is blocking (pyserial): the agent runs it in a worker thread
(`ModemService`), never on the event loop. pyserial is imported only when a modem is
configured.
"""

from __future__ import annotations

import contextlib
import logging
import re
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from agent.probes.modem import ModemReading

log = logging.getLogger(__name__)

MAX_LINE = 512  # an AT answer line is short; anything longer is noise
MAX_LINES = 64
# A modem without network time answers with its power-on default (1980, 2000, 2004 …):
# anything before this cannot be the network's time.
EARLIEST_NETWORK_TIME = datetime(2026, 1, 1, tzinfo=UTC).timestamp()

_ACCESS = {0: "gsm", 2: "umts", 3: "gsm", 4: "umts", 5: "umts", 6: "umts", 7: "lte"}
_CSQ = re.compile(r"^\+CSQ:\s*(\d+)\s*,\s*(\d+)$")
_COPS = re.compile(r'^\+COPS:\s*(\d)(?:\s*,\s*(\d)\s*,\s*"([^"]{0,64})"(?:\s*,\s*(\d+))?)?$')
_CREG = re.compile(r"^\+C(?:E)?REG:\s*(\d)\s*,\s*(\d)")
_CCLK = re.compile(
    r'^\+CCLK:\s*"(\d{2})/(\d{2})/(\d{2}),(\d{2}):(\d{2}):(\d{2})(?:([+-])(\d{1,2}))?"$'
)


class AtError(Exception):
    """The modem answered ERROR / +CME ERROR, or nothing usable before the deadline."""


class AtTimeout(AtError):
    pass


class PortGone(Exception):
    """The serial port failed (unplugged, renumbered, EIO): close it and look again."""


@dataclass(frozen=True)
class UsbId:
    vendor: int
    product: int
    interface: int  # the USB interface that speaks AT (Huawei/Quectel: often 2)

    @classmethod
    def parse(cls, text: str, interface: int) -> UsbId:
        """`"2c7c:0125"` → UsbId; ValueError says what is wrong."""
        m = re.fullmatch(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4})", text.strip())
        if m is None:
            raise ValueError(f"{text!r} is not a USB id VVVV:PPPP in hex (see `lsusb`)")
        return cls(int(m.group(1), 16), int(m.group(2), 16), interface)


def find_port(
    usb: UsbId, *, sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev")
) -> Path | None:
    """The tty of the modem's AT interface, found through sysfs by USB id; None if absent."""
    base = sys_root / "bus/usb/devices"
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return None
    for dev in entries:
        if ":" in dev.name or not _matches(dev, usb):
            continue
        for intf in sorted(dev.parent.glob(f"{dev.name}:*.{usb.interface}")):
            tty = _tty_in(intf)
            if tty is not None:
                return dev_root / tty
    return None


def _matches(dev: Path, usb: UsbId) -> bool:
    try:
        vendor = int((dev / "idVendor").read_text().strip(), 16)
        product = int((dev / "idProduct").read_text().strip(), 16)
    except (OSError, ValueError):
        return False
    return (vendor, product) == (usb.vendor, usb.product)


def _tty_in(intf: Path) -> str | None:
    # option/qcserial drivers put ttyUSBn directly in the interface folder, cdc_acm
    # puts ttyACMn under tty/.
    for folder in (intf, intf / "tty"):
        try:
            names = sorted(p.name for p in folder.iterdir())
        except OSError:
            continue
        for name in names:
            if re.fullmatch(r"tty(USB|ACM)\d{1,3}", name):
                return name
    return None


def parse_csq(line: str) -> int | None:
    """`+CSQ: 20,99` → -73 dBm (27.007: -113 + 2·rssi); 99 (unknown) → None."""
    m = _CSQ.match(line)
    if m is None:
        return None
    rssi = int(m.group(1))
    return -113 + 2 * rssi if 0 <= rssi <= 31 else None


def parse_cops(line: str) -> tuple[str | None, str | None]:
    """`+COPS: 0,0,"Viettel",7` → ("Viettel", "lte")."""
    m = _COPS.match(line)
    if m is None or m.group(3) is None:
        return None, None
    name = "".join(ch for ch in m.group(3) if ch.isprintable()).strip() or None
    act = _ACCESS.get(int(m.group(4))) if m.group(4) else None
    return name, act


def parse_creg(line: str) -> bool | None:
    """`+CREG: 0,1` → True (home), 5 → True (roaming), 0/2/3/4 → False."""
    m = _CREG.match(line)
    if m is None:
        return None
    return int(m.group(2)) in (1, 5)


def parse_cclk(line: str) -> float | None:
    """`+CCLK: "26/12/01,15:30:00+28"` (zone in quarter hours) → Unix time; None if unset."""
    m = _CCLK.match(line)
    if m is None:
        return None
    yy, mo, dd, hh, mi, ss = (int(g) for g in m.groups()[:6])
    quarters = int(m.group(8) or 0) * (-1 if m.group(7) == "-" else 1)
    if not -48 <= quarters <= 56:
        return None
    try:
        zone = timezone(timedelta(minutes=15 * quarters))
        # Two-digit years: modems power up at 1980-01-06 (GPS epoch) or 2000/2004.
        century = 1900 if yy >= 70 else 2000
        local = datetime(century + yy, mo, dd, hh, mi, ss, tzinfo=zone)
    except ValueError:
        return None
    t = local.timestamp()
    return t if t >= EARLIEST_NETWORK_TIME else None


class AtPort:
    """One open serial port speaking AT; every exchange bounded by a deadline."""

    def __init__(self, path: Path, *, baud: int = 115200, timeout_s: float = 2.0) -> None:
        import serial  # optional hardware library: imported only when a modem is configured

        # termios.error (not an OSError) comes from tcflush on a pty whose other end closed.
        self._port_errors: tuple[type[Exception], ...] = (
            serial.SerialException,
            OSError,
            termios.error,
        )
        try:
            self._port: Any = serial.Serial(
                str(path), baud, timeout=0.05, write_timeout=timeout_s, exclusive=True
            )
        except (serial.SerialException, OSError) as e:
            raise PortGone(f"{path}: {e}") from e
        self.path = path
        self.timeout_s = timeout_s
        self._buf = b""

    def close(self) -> None:
        # Closing a port that vanished may fail; it is gone either way.
        with contextlib.suppress(Exception):
            self._port.close()

    def command(self, cmd: str, *, timeout_s: float | None = None) -> list[str]:
        """Send `cmd`; return the answer's information lines (echo and noise dropped).

        Raises AtError on ERROR, AtTimeout when no final OK/ERROR came in time, PortGone
        when the port itself failed.
        """
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        try:
            self._port.reset_input_buffer()
            self._buf = b""
            self._port.write(cmd.encode("ascii") + b"\r")
        except self._port_errors as e:
            raise PortGone(f"{self.path}: {e}") from e
        lines: list[str] = []
        while True:
            line = self._readline(deadline)
            if line is None:
                raise AtTimeout(f"{cmd}: no answer within {timeout_s or self.timeout_s:g} s")
            if line == "OK":
                return lines
            if line == "ERROR" or line.startswith(("+CME ERROR", "+CMS ERROR")):
                raise AtError(f"{cmd}: {line}")
            if not line or line == cmd or line.upper() == cmd.upper():
                continue  # blank line or our own echo
            if len(lines) < MAX_LINES:
                lines.append(line)

    def _readline(self, deadline: float) -> str | None:
        while True:
            cut = self._buf.find(b"\n")
            if cut < 0:
                cut = self._buf.find(b"\r")
            if cut >= 0:
                raw, self._buf = self._buf[:cut], self._buf[cut + 1 :]
                text = raw.decode("ascii", errors="replace").strip("\r\n ")
                if len(raw) > MAX_LINE or not text.isprintable():
                    continue  # line noise: skip, keep listening
                return text
            if len(self._buf) > MAX_LINE:
                self._buf = b""  # a runaway line without a newline: noise
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self._port.read(256)
            except self._port_errors as e:
                raise PortGone(f"{self.path}: {e}") from e
            self._buf += chunk


def _first(lines: list[str], prefix: str) -> str:
    return next((ln for ln in lines if ln.startswith(prefix)), "")


class Modem:
    """The probe loop's state: where the port is, how many probes failed, when to reset."""

    def __init__(
        self,
        usb: UsbId,
        *,
        sys_root: Path = Path("/sys"),
        dev_root: Path = Path("/dev"),
        baud: int = 115200,
        timeout_s: float = 2.0,
        reset_after: int = 3,
        event: Callable[[str, str, str], None] = lambda level, code, detail: None,
        opener: Callable[[Path], AtPort] | None = None,
    ) -> None:
        if reset_after < 1:
            raise ValueError(f"reset_after={reset_after} must be >= 1")
        self.usb = usb
        self._sys = sys_root
        self._dev = dev_root
        self._open = opener or (lambda p: AtPort(p, baud=baud, timeout_s=timeout_s))
        self.reset_after = reset_after
        self._event = event
        self.port: AtPort | None = None
        self.failures = 0
        self.resets = 0
        self.network_time: tuple[float, float] | None = None  # (unix time, monotonic then)

    def close(self) -> None:
        if self.port is not None:
            self.port.close()
            self.port = None

    def _ensure_port(self) -> AtPort | None:
        if self.port is not None:
            return self.port
        path = find_port(self.usb, sys_root=self._sys, dev_root=self._dev)
        if path is None:
            return None
        try:
            port = self._open(path)
        except PortGone as e:
            log.info("modem port not usable yet: %s", e)
            return None
        self.port = port
        log.info("modem found at %s", path)
        for setup in ("ATE0", "AT+CTZU=1"):  # less echo; network time zone updates on
            try:
                port.command(setup)
            except AtError:
                pass
            except PortGone:
                self.close()
                return None
        return port

    def probe(self) -> ModemReading | None:
        """Ask signal, operator and registration; None when the modem did not answer."""
        port = self._ensure_port()
        if port is None:
            self._failed(
                f"no modem port with USB id {self.usb.vendor:04x}:{self.usb.product:04x}",
                can_reset=False,
            )
            return None
        try:
            rssi = parse_csq(_first(port.command("AT+CSQ"), "+CSQ:"))
            operator, access = parse_cops(_first(port.command("AT+COPS?"), "+COPS:"))
            registered = parse_creg(_first(port.command("AT+CREG?"), "+CREG:"))
            self._read_time(port)
        except PortGone as e:
            log.warning("modem port lost: %s", e)
            self.close()
            self._failed(str(e), can_reset=False)
            return None
        except AtError as e:
            self._failed(str(e), can_reset=True)
            return None
        self.failures = 0
        return ModemReading(rssi, operator, registered, access)

    def _read_time(self, port: AtPort) -> None:
        try:
            t = parse_cclk(_first(port.command("AT+CCLK?"), "+CCLK:"))
        except AtError:
            return  # network time is a bonus; its absence does not fail the probe
        if t is not None:
            self.network_time = (t, time.monotonic())

    def _failed(self, why: str, *, can_reset: bool) -> None:
        self.failures += 1
        log.info("modem probe failed (%d in a row): %s", self.failures, why)
        if not can_reset or self.failures < self.reset_after or self.port is None:
            return
        self.failures = 0
        self.resets += 1
        try:
            self.port.command("AT+CFUN=1,1", timeout_s=5.0)
            outcome = "restarted with AT+CFUN=1,1"
        except (AtError, PortGone) as e:
            outcome = f"AT+CFUN=1,1 not acknowledged ({e})"
        # The modem re-enumerates on USB after a restart: look for its port again.
        self.close()
        self._event(
            "warning",
            "modem_reset",
            f"the cellular modem stopped answering ({why}); {outcome}",
        )
