"""`[display] power_control = "relay"` with its `[display.relay]` table: the [amplifier]
keys, checked by the relay drivers themselves, so `config check` refuses what `run`
would, and a screen relay can never be the amplifier's own contact."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config import good_config_text

from agent.config import AmplifierConfig, ConfigError, parse_config
from agent.hardware import build_relay
from drivers.amp_serial import SerialRelayAmplifier

SERIAL = (
    'kind = "serial-relay"\nport = "/dev/ttyUSB1"\n'
    'on_bytes = "A0 02 01 A3"\noff_bytes = "A0 02 00 A2"\n'
)


def parse(tmp_path: Path, extra: str):  # type: ignore[no-untyped-def]
    return parse_config(good_config_text(tmp_path) + "\n" + extra, tmp_path / "agent.toml")


def problems(tmp_path: Path, extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, extra)
    return info.value.problems


def test_serial_and_gpio_screen_relays_parse(tmp_path: Path) -> None:
    cfg = parse(tmp_path, f'[display]\npower_control = "relay"\n[display.relay]\n{SERIAL}')
    relay = cfg.display.relay
    assert relay is not None and relay.kind == "serial-relay"
    assert (relay.port, relay.on_bytes, relay.off_bytes) == (
        "/dev/ttyUSB1",
        b"\xa0\x02\x01\xa3",
        b"\xa0\x02\x00\xa2",
    )
    # What the check accepted, the driver builds (without opening the port).
    assert isinstance(build_relay(relay), SerialRelayAmplifier)
    cfg = parse(
        tmp_path, '[display]\npower_control = "relay"\n[display.relay]\nkind = "gpio"\nline = 27\n'
    )
    assert cfg.display.relay == AmplifierConfig(kind="gpio", line=27)
    # Another channel of the amplifier's own board is fine.
    amp = (
        '[amplifier]\nkind = "serial-relay"\nport = "/dev/ttyUSB1"\n'
        'on_bytes = "A0 01 01 A2"\noff_bytes = "A0 01 00 A1"\n'
    )
    cfg = parse(tmp_path, f'{amp}[display]\npower_control = "relay"\n[display.relay]\n{SERIAL}')
    assert cfg.amplifier.port == cfg.display.relay.port  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("extra", "where", "says"),
    [
        ('[display]\npower_control = "relay"\n', "display.relay", "needs a [display.relay]"),
        ('[display]\npower_control = "relais"\n', "display.power_control", "did you mean 'relay'"),
        (f"[display]\n[display.relay]\n{SERIAL}", "display.relay", 'power_control = "relay" only'),
        (
            '[display]\npower_control = "relay"\n[display.relay]\nkind = "none"\n',
            "display.relay.kind",
            "serial-relay or gpio",
        ),
        (
            '[display]\npower_control = "relay"\n[display.relay]\nkind = "serial-relay"\n'
            'port = "/dev/ttyUSB1"\non_bytes = "01"\noff_bytes = "01"\n',
            "display.relay.off_bytes",
            "same as on_bytes",
        ),
        (
            '[display]\npower_control = "relay"\n[display.relay]\nkind = "serial-relay"\n'
            'on_bytes = "01"\noff_bytes = "00"\n',
            "display.relay.port",
            "serial port",
        ),
        (
            '[display]\npower_control = "relay"\n[display.relay]\nkind = "serial-relay"\n'
            'port = "ttyUSB1"\non_bytes = "01"\noff_bytes = "00"\n',
            "display.relay.port",
            "absolute",
        ),
        (
            '[display]\npower_control = "relay"\n[display.relay]\nkind = "serial-relay"\n'
            'port = "/dev/ttyUSB1"\non_bytes = "01"\noff_bytes = "00"\non_reply = "01"\n',
            "display.relay.query_bytes",
            "status query",
        ),
        (
            '[display]\npower_control = "relay"\n[display.relay]\nkind = "gpio"\n',
            "display.relay.line",
            "line offset",
        ),
        (
            '[display]\npower_control = "relay"\n[display.relay]\nkind = "gpio"\n'
            'line = 3\nchip = "x"\n',
            "display.relay.chip",
            "gpiochip",
        ),
        (
            '[display]\npower_control = "relay"\n[display.relay]\nkind = "gpio"\nline = 3\n'
            "activ_low = true\n",
            "display.relay.activ_low",
            "did you mean 'active_low'",
        ),
        (
            '[amplifier]\nkind = "gpio"\nline = 17\n[display]\npower_control = "relay"\n'
            '[display.relay]\nkind = "gpio"\nline = 17\n',
            "display.relay.line",
            "own line",
        ),
        (
            "[amplifier]\n"
            + SERIAL
            + '[display]\npower_control = "relay"\n[display.relay]\n'
            + SERIAL,
            "display.relay.on_bytes",
            "same relay as [amplifier]",
        ),
    ],
)
def test_bad_screen_relay_one_clear_line(tmp_path: Path, extra: str, where: str, says: str) -> None:
    (problem,) = problems(tmp_path, extra)
    assert f"agent.toml:{where}:" in problem
    assert says in problem


def test_check_and_driver_agree(tmp_path: Path) -> None:
    """The driver refuses exactly what the check refuses (one source of the rules)."""
    bad = dict(port="/dev/ttyUSB1", on_bytes=b"\x01", off_bytes=b"\x01")
    with pytest.raises(ValueError, match="same as on_bytes"):
        SerialRelayAmplifier(baud=9600, **bad)  # type: ignore[arg-type]
    assert SerialRelayAmplifier.settings_problems(**bad) == {  # type: ignore[arg-type]
        "off_bytes": "is the same as on_bytes: the relay could never be told apart"
    }
