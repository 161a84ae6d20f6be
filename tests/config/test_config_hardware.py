"""[amplifier] and [modem]: valid set-ups parse, each mistake gets one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config import good_config_text

from agent.config import ConfigError, parse_config


def parse(tmp_path: Path, extra: str):  # type: ignore[no-untyped-def]
    return parse_config(good_config_text(tmp_path) + extra, tmp_path / "agent.toml")


def only_problem(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, extra)
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


def test_defaults_are_no_amplifier_and_no_modem(tmp_path: Path) -> None:
    cfg = parse(tmp_path, "")
    assert cfg.amplifier.kind == "none"
    assert not cfg.modem.enabled


def test_serial_relay_and_modem_parse(tmp_path: Path) -> None:
    cfg = parse(
        tmp_path,
        """
[amplifier]
kind = "serial-relay"
port = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"
on_bytes = "A0 01 01 A2"
off_bytes = "a00100a1"
query_bytes = "FF"
on_reply = "01"
off_reply = "00"

[modem]
usb_id = "2C7C:0125"
data_iface = "wwan0"
reset_after = 5
""",
    )
    assert cfg.amplifier.on_bytes == b"\xa0\x01\x01\xa2"
    assert cfg.amplifier.off_bytes == b"\xa0\x01\x00\xa1"
    assert cfg.amplifier.query_bytes == b"\xff"
    assert cfg.modem.usb_id == "2c7c:0125" and cfg.modem.reset_after == 5


@pytest.mark.parametrize(
    ("extra", "where", "says"),
    [
        ('[amplifier]\nkind = "serial_relay"\n', "amplifier.kind", "did you mean 'serial-relay'"),
        (
            '[amplifier]\nkind = "serial-relay"\n'
            'on_bytes = "A0 01 01 A2"\noff_bytes = "A0 01 00 A1"\n',
            "amplifier.port",
            "serial port",
        ),
        (
            '[amplifier]\nkind = "serial-relay"\nport = "/dev/ttyUSB0"\n'
            'on_bytes = "A0 01 01 A2"\noff_bytes = "A0 01 0"\n',
            "amplifier.off_bytes",
            "hex",
        ),
        (
            '[amplifier]\nkind = "serial-relay"\nport = "/dev/ttyUSB0"\non_bytes = "01"\n',
            "amplifier.off_bytes",
            "missing",
        ),
        (
            '[amplifier]\nkind = "serial-relay"\nport = "/dev/ttyUSB0"\n'
            'on_bytes = "01"\noff_bytes = "01"\n',
            "amplifier.off_bytes",
            "same as on_bytes",
        ),
        (
            '[amplifier]\nkind = "serial-relay"\nport = "/dev/ttyUSB0"\n'
            'on_bytes = "01"\noff_bytes = "00"\nquery_bytes = "FF"\non_reply = "01"\n',
            "amplifier.query_bytes",
            "off_reply",
        ),
        ('[amplifier]\nkind = "gpio"\n', "amplifier.line", "line offset"),
        ('[amplifier]\nkind = "gpio"\nline = 17\nchip = "gpio0"\n', "amplifier.chip", "gpiochip"),
        ('[amplifier]\nkind = "none"\nbaud = 9601\n', "amplifier.baud", "standard serial speed"),
        ('[modem]\nusb_id = "ttyUSB2"\n', "modem.usb_id", "lsusb"),
        ('[modem]\nusb_id = "2c7c:0125"\nreset_after = 0\n', "modem.reset_after", "between 1"),
        ('[modem]\ndata_iface = "wwan0; rm -rf /"\n', "modem.data_iface", "interface name"),
        ('[modem]\nusb_ids = "2c7c:0125"\n', "modem.usb_ids", "did you mean 'usb_id'"),
    ],
)
def test_each_mistake_one_clear_line(tmp_path: Path, extra: str, where: str, says: str) -> None:
    problem = only_problem(tmp_path, "\n" + extra)
    assert f"agent.toml:{where}:" in problem
    assert says in problem
