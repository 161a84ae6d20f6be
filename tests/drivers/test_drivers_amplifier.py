"""Amplifier power drivers: a serial relay board over a socat pty pair (exact bytes), a
GPIO line through a strict fake (no GPIO chip exists here), and the factory."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.gpio import StrictLine
from support.ptys import PtyPair
from support.relay_sim import RelaySim

from agent.config import AmplifierConfig
from agent.hardware import build_amplifier
from agent.probes.amplifier import amplifier_state
from drivers.amp_gpio import GpioAmplifier, GpioUnavailable
from drivers.amp_serial import SerialRelayAmplifier
from drivers.amplifier import AmplifierPower

ON, OFF = bytes.fromhex("A00101A2"), bytes.fromhex("A00100A1")


def until(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def relay(path: Path, **kw: bytes) -> SerialRelayAmplifier:
    return SerialRelayAmplifier(str(path), baud=9600, on_bytes=ON, off_bytes=OFF, **kw)


def test_relay_gets_exact_bytes_before_sound_and_after_idle(tmp_path: Path) -> None:
    with PtyPair(tmp_path / "ttyUSB0") as pair, RelaySim(pair.sim_end, on=ON, off=OFF) as board:
        amp = relay(pair.driver_end)
        power = AmplifierPower(amp, lead_s=2.0, idle_s=30.0)
        try:
            power.update(100.0, playing=False, next_start=105.0)
            assert board.bytes_seen() == b""  # not yet within the lead
            power.update(103.0, playing=False, next_start=105.0)
            until(lambda: board.bytes_seen() == ON, "the on sequence")
            assert power.sound_may_start(103.0) == 105.0
            power.update(105.0, playing=True, next_start=None)
            power.update(120.0, playing=True, next_start=None)  # the sound's last moment
            power.update(149.0, playing=False, next_start=None)
            assert amp.is_on  # idle for 29 s: still on (nothing was asked of the relay)
            power.update(150.0, playing=False, next_start=None)
            until(lambda: board.bytes_seen() == ON + OFF, "the off sequence")
            assert amplifier_state(amp) == {"on": False, "read_back": False}
        finally:
            amp.close()


def test_relay_state_read_back(tmp_path: Path) -> None:
    q, yes, no = b"\xff", b"\x01", b"\x00"
    with (
        PtyPair(tmp_path / "ttyUSB0") as pair,
        RelaySim(pair.sim_end, on=ON, off=OFF, query=q, on_reply=yes, off_reply=no) as board,
    ):
        amp = relay(pair.driver_end, query_bytes=q, on_reply=yes, off_reply=no)
        try:
            assert amp.read_back() is False
            amp.on()
            until(lambda: board.closed, "the relay to close")
            assert amp.read_back() is True
            assert amplifier_state(amp) == {"on": True, "read_back": True}
        finally:
            amp.close()


def test_unplugged_relay_never_raises_and_recovers(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB0"
    with PtyPair(port) as pair, RelaySim(pair.sim_end, on=ON, off=OFF):
        amp = relay(port)
        amp.on()
        pair.vanish()
        amp.off()  # logged, not raised: the audio engine carries on
        amp.on()
        assert amp.is_on
    with PtyPair(port) as pair, RelaySim(pair.sim_end, on=ON, off=OFF) as board:
        amp.off()
        until(lambda: board.bytes_seen() == OFF, "the off sequence on the new port")
        amp.close()


def test_gpio_amplifier_switches_and_reads_back() -> None:
    line = StrictLine()
    amp = GpioAmplifier(line)
    assert amp.read_back() is False
    amp.on()
    assert line.values == [True] and amp.read_back() is True
    amp.off()
    assert line.values == [True, False]
    assert amplifier_state(amp) == {"on": False, "read_back": True}
    amp.close()
    assert line.released


def test_gpio_failure_is_unknown_not_raised() -> None:
    amp = GpioAmplifier(StrictLine(fail=True))
    amp.on()  # logged, not raised
    assert amp.is_on
    assert amplifier_state(amp) is None


def test_factory_builds_configured_kind(tmp_path: Path) -> None:
    assert build_amplifier(AmplifierConfig()) is None  # nothing switched, no lead to wait
    with PtyPair(tmp_path / "ttyUSB0") as pair, RelaySim(pair.sim_end, on=ON, off=OFF) as board:
        cfg = AmplifierConfig(
            kind="serial-relay", port=str(pair.driver_end), on_bytes=ON, off_bytes=OFF
        )
        amp = build_amplifier(cfg)
        assert isinstance(amp, SerialRelayAmplifier)
        # A relay left closed by a crash is opened at start.
        until(lambda: board.bytes_seen() == OFF, "the off sequence at start")
        amp.close()
    with pytest.raises(GpioUnavailable) as info:
        build_amplifier(AmplifierConfig(kind="gpio", chip=str(tmp_path / "gpiochip9"), line=17))
    if importlib.util.find_spec("gpiod") is None:
        assert "pip install 'gpiod>=2'" in str(info.value)
    else:
        assert "gpiochip9" in str(info.value)
