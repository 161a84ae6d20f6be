"""The AT modem driver against a simulated modem on a socat pty pair: echo, garbage,
timeouts, a hung firmware reset with AT+CFUN, a port that vanishes and renumbers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from support.modem_sim import ModemSim, PtyPair, fake_usb_sysfs

from drivers.modem import Modem, UsbId, find_port, parse_cclk, parse_cops, parse_csq

USB = UsbId(0x2C7C, 0x0125, 2)


class Trees:
    def __init__(self, root: Path) -> None:
        self.sys = root / "sys"
        self.dev = root / "dev"
        self.dev.mkdir(parents=True)


@pytest.fixture
def trees(tmp_path: Path) -> Trees:
    return Trees(tmp_path)


@pytest.fixture
def modem_at(trees: Trees) -> Iterator[tuple[PtyPair, ModemSim]]:
    fake_usb_sysfs(trees.sys, "ttyUSB2")
    with PtyPair(trees.dev / "ttyUSB2") as pair, ModemSim(pair.sim_end) as sim:
        yield pair, sim


def make_modem(trees: Trees, events: list[tuple[str, str, str]], **kw: object) -> Modem:
    return Modem(
        USB,
        sys_root=trees.sys,
        dev_root=trees.dev,
        timeout_s=0.5,
        event=lambda *e: events.append(e),
        **kw,  # type: ignore[arg-type]
    )


def test_reads_signal_operator_registration_and_network_time(
    trees: Trees, modem_at: tuple[PtyPair, ModemSim]
) -> None:
    _, sim = modem_at
    m = make_modem(trees, [])
    try:
        r = m.probe()
        assert r is not None
        assert (r.rssi_dbm, r.operator, r.registered, r.access) == (-73, "Viettel", True, "lte")
        assert m.network_time is not None
        expected = datetime.fromisoformat("2026-12-01T22:30:00+07:00").timestamp()
        assert m.network_time[0] == expected
        assert "AT+CTZU=1" in sim.received  # automatic time zone update asked for
    finally:
        m.close()


def test_tolerates_echo_and_garbage(trees: Trees, modem_at: tuple[PtyPair, ModemSim]) -> None:
    _, sim = modem_at
    sim.echo = True
    sim.garbage = True
    sim.csq = "31,99"
    m = make_modem(trees, [])
    try:
        for _ in range(3):
            r = m.probe()
            assert r is not None and r.rssi_dbm == -51 and r.operator == "Viettel"
    finally:
        m.close()


def test_hung_modem_times_out_then_is_reset_with_cfun(
    trees: Trees, modem_at: tuple[PtyPair, ModemSim]
) -> None:
    _, sim = modem_at
    events: list[tuple[str, str, str]] = []
    m = make_modem(trees, events, reset_after=2)
    try:
        assert m.probe() is not None
        sim.hung_until_cfun = True
        assert m.probe() is None
        assert events == [] and sim.resets == 0  # one failure is not yet a hung modem
        assert m.probe() is None
        assert sim.resets == 1
        assert [e[1] for e in events] == ["modem_reset"]
        assert "AT+CFUN=1,1" in events[0][2]
        r = m.probe()  # it answers again after the restart
        assert r is not None and r.operator == "Viettel"
    finally:
        m.close()


def test_silent_modem_probe_fails_within_its_deadline(
    trees: Trees, modem_at: tuple[PtyPair, ModemSim]
) -> None:
    _, sim = modem_at
    sim.silent = True
    events: list[tuple[str, str, str]] = []
    m = make_modem(trees, events, reset_after=5)
    try:
        assert m.probe() is None
        assert m.failures == 1 and events == []
    finally:
        m.close()


def test_port_vanishes_and_comes_back_renumbered(trees: Trees) -> None:
    fake_usb_sysfs(trees.sys, "ttyUSB2")
    events: list[tuple[str, str, str]] = []
    m = make_modem(trees, events, reset_after=1)
    try:
        with PtyPair(trees.dev / "ttyUSB2") as pair, ModemSim(pair.sim_end):
            assert m.probe() is not None
            pair.vanish()
            import shutil

            shutil.rmtree(trees.sys / "bus/usb/devices")  # unplugged: gone from sysfs too
            assert m.probe() is None
            assert m.probe() is None
        assert events == []  # nothing to reset while there is no port
        # Plugged back in, it enumerates as ttyUSB6: found again by its USB id.
        fake_usb_sysfs(trees.sys, "ttyUSB6")
        assert find_port(USB, sys_root=trees.sys, dev_root=trees.dev) == trees.dev / "ttyUSB6"
        with PtyPair(trees.dev / "ttyUSB6") as pair, ModemSim(pair.sim_end) as sim:
            sim.operator = "Vinaphone"
            r = m.probe()
            assert r is not None and r.operator == "Vinaphone"
    finally:
        m.close()


def test_find_port_ignores_other_devices_and_garbage(tmp_path: Path) -> None:
    fake_usb_sysfs(tmp_path, "ttyUSB2", vid="12d1", pid="1506")
    assert find_port(USB, sys_root=tmp_path, dev_root=Path("/dev")) is None
    fake_usb_sysfs(tmp_path, "ttyUSB2")
    (tmp_path / "bus/usb/devices/1-1.3/idVendor").write_text("zzzz")
    assert find_port(USB, sys_root=tmp_path, dev_root=Path("/dev")) is None
    assert find_port(USB, sys_root=tmp_path / "nothing") is None


@pytest.mark.parametrize(
    ("line", "dbm"),
    [("+CSQ: 0,99", -113), ("+CSQ: 99,99", None), ("+CSQ: 45,0", None), ("+CSQ: x", None)],
)
def test_parse_csq(line: str, dbm: int | None) -> None:
    assert parse_csq(line) == dbm


def test_parse_cops_and_cclk_reject_garbage() -> None:
    assert parse_cops("+COPS: 0") == (None, None)
    assert parse_cops('+COPS: 0,0,"Mobifone",2') == ("Mobifone", "umts")
    assert parse_cclk('+CCLK: "80/01/06,00:00:10+00"') is None  # power-on default, no NITZ
    assert parse_cclk('+CCLK: "26/13/01,00:00:10+28"') is None
    assert parse_cclk("+CCLK: garbage") is None
    assert (
        parse_cclk('+CCLK: "26/12/01,15:00:00-20"')
        == datetime.fromisoformat("2026-12-01T15:00:00-05:00").timestamp()
    )
