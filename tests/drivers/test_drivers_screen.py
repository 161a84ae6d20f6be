"""Screen power by schedule and emergency, checked against a fake `cec-client` on PATH
(no HDMI here) that records what it was asked and fails on anything unexpected, and
through a relay: a serial relay board over a socat pty and a strict fake GPIO line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.boards import poll
from support.gpio import StrictLine
from support.ptys import PtyPair
from support.relay_sim import RelaySim

from agent.config import BrightnessStep, QuietHours
from drivers.amp_gpio import GpioAmplifier
from drivers.amp_serial import SerialRelayAmplifier
from drivers.screen import (
    Backlight,
    CecSwitch,
    DpmsSwitch,
    RelaySwitch,
    ScreenPower,
    brightness_at,
    wanted,
)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
ON_HOURS = QuietHours.parse("06:00-22:00")
STEPS = (BrightnessStep(6 * 60, 100), BrightnessStep(19 * 60, 60), BrightnessStep(22 * 60, 20))


def at(hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(2026, 12, 1, h, m, tzinfo=TZ)


def test_schedule_off_then_on_and_emergency_during_off(cec_log: Path) -> None:
    power = ScreenPower(CecSwitch())
    timeline = [
        ("21:00", False),
        ("22:30", False),
        ("23:10", True),
        ("23:20", False),
        ("06:00", False),
    ]
    seen = []
    for hhmm, emergency in timeline:
        power.apply(wanted(at(hhmm), on_hours=ON_HOURS, steps=STEPS, emergency=emergency))
        seen.append((power.power, power.reason))
    assert seen == [
        ("on", "schedule"),
        ("off", "off_hours"),  # deliberately off: not a failure
        ("on", "emergency"),
        ("off", "off_hours"),
        ("on", "schedule"),
    ]
    assert cec_log.read_text().splitlines() == [
        "on 0",
        "as",
        "standby 0",
        "on 0",
        "as",
        "standby 0",
        "on 0",
        "as",
    ]


def test_a_tv_that_does_not_answer_is_failed_not_off(cec_log: Path, tmp_path: Path) -> None:
    (tmp_path / "tv-unplugged").touch()
    power = ScreenPower(CecSwitch())
    power.apply(wanted(at("12:00"), on_hours=ON_HOURS, steps=(), emergency=False))
    assert power.power == "failed" and "on 0" in (power.error or "")
    assert power.report()["power"] == "failed"


def test_missing_cec_client_is_a_clear_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    power = ScreenPower(CecSwitch())
    power.apply(wanted(at("12:00"), on_hours=None, steps=(), emergency=False))
    assert power.power == "failed" and "cec-utils" in (power.error or "")


def test_brightness_by_time_of_day_wraps_midnight() -> None:
    assert [brightness_at(STEPS, h * 60) for h in (3, 6, 12, 19, 23)] == [20, 100, 100, 60, 20]
    assert brightness_at((), 600) == 100


def test_backlight_and_dpms_files(tmp_path: Path) -> None:
    light = tmp_path / "backlight" / "rpi_backlight"
    light.mkdir(parents=True)
    (light / "max_brightness").write_text("255\n")
    (light / "brightness").write_text("255\n")
    blank = tmp_path / "blank"
    found = Backlight.find(root=tmp_path / "backlight")
    assert found is not None
    power = ScreenPower(DpmsSwitch(blank), dimmer=found)
    power.apply(wanted(at("19:30"), on_hours=ON_HOURS, steps=STEPS, emergency=False))
    assert (light / "brightness").read_text() == "153" and blank.read_text() == "0"
    power.apply(wanted(at("22:30"), on_hours=ON_HOURS, steps=STEPS, emergency=False))
    assert blank.read_text() == "4" and power.power == "off"
    power.apply(wanted(at("22:31"), on_hours=ON_HOURS, steps=STEPS, emergency=True))
    assert blank.read_text() == "0" and (light / "brightness").read_text() == "255"


def test_matrix_contrast_follows_brightness() -> None:
    levels: list[int] = []
    from drivers.screen import MatrixSwitch

    lit: list[bool] = []
    power = ScreenPower(MatrixSwitch(lit.append), contrast=levels.append)
    power.apply(wanted(at("19:30"), on_hours=ON_HOURS, steps=STEPS, emergency=False), 0x80)
    power.apply(wanted(at("23:00"), on_hours=ON_HOURS, steps=STEPS, emergency=False), 0x80)
    assert levels == [round(0x80 * 0.6), round(0x80 * 0.2)] and lit == [True, False]


# ---- a relay in the screen's power lead: the amplifier's relay drivers, real serial
# path over a socat pty (tests/support/relay_sim.py), GPIO through the strict fake.

ON, OFF = bytes.fromhex("A00201A3"), bytes.fromhex("A00200A2")
QUERY, YES, NO = b"\xff", b"\x01", b"\x00"
TIMELINE = [("21:00", False), ("22:30", False), ("23:10", True), ("23:20", False), ("06:00", False)]
EXPECTED = [
    ("on", "schedule"),
    ("off", "off_hours"),  # deliberately off: not a failure
    ("on", "emergency"),
    ("off", "off_hours"),
    ("on", "schedule"),
]


def run_timeline(power: ScreenPower) -> list[tuple[str | None, str]]:
    seen = []
    for hhmm, emergency in TIMELINE:
        power.apply(wanted(at(hhmm), on_hours=ON_HOURS, steps=STEPS, emergency=emergency))
        seen.append((power.power, power.reason))
    return seen


def serial_relay(port: Path, **kw: bytes) -> RelaySwitch:
    return RelaySwitch(SerialRelayAmplifier(str(port), baud=9600, on_bytes=ON, off_bytes=OFF, **kw))


def test_serial_relay_schedule_off_then_on_and_emergency_during_off(tmp_path: Path) -> None:
    with (
        PtyPair(tmp_path / "ttyUSB1") as pair,
        RelaySim(pair.sim_end, on=ON, off=OFF, query=QUERY, on_reply=YES, off_reply=NO) as board,
    ):
        switch = serial_relay(pair.driver_end, query_bytes=QUERY, on_reply=YES, off_reply=NO)
        power = ScreenPower(switch)
        try:
            assert run_timeline(power) == EXPECTED
            # Exact bytes, each switch checked by the board's own status answer.
            assert board.bytes_seen() == (ON + QUERY + OFF + QUERY) * 2 + ON + QUERY
            assert board.closed and power.report()["power_control"] == "relay"
        finally:
            switch.close()


def test_gpio_relay_schedule_off_then_on_and_emergency_during_off() -> None:
    line = StrictLine()
    switch = RelaySwitch(GpioAmplifier(line))
    power = ScreenPower(switch)
    assert run_timeline(power) == EXPECTED
    assert line.values == [True, False, True, False, True]
    switch.close()
    assert line.released


def test_unplugged_relay_is_failed_not_off_and_recovers(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB1"
    with PtyPair(port) as pair, RelaySim(pair.sim_end, on=ON, off=OFF):
        switch = serial_relay(port)
        mono = [0.0]
        power = ScreenPower(switch, retry_s=30.0, monotonic=lambda: mono[0])
        power.apply(wanted(at("12:00"), on_hours=ON_HOURS, steps=(), emergency=False))
        assert power.power == "on"
        pair.vanish()
        power.apply(wanted(at("23:00"), on_hours=ON_HOURS, steps=(), emergency=False))
        report = power.report()
        assert report["power"] == "failed" and "cannot switch off" in str(report["power_error"])
    with PtyPair(port) as pair, RelaySim(pair.sim_end, on=ON, off=OFF) as board:
        mono[0] = 29.0  # a failed switch is not hammered every watch round...
        power.apply(wanted(at("23:01"), on_hours=ON_HOURS, steps=(), emergency=False))
        assert power.power == "failed"
        mono[0] = 30.0  # ... but retried after retry_s
        power.apply(wanted(at("23:02"), on_hours=ON_HOURS, steps=(), emergency=False))
        assert power.power == "off" and power.error is None
        poll(lambda: board.bytes_seen() == OFF)
        switch.close()


def test_a_relay_that_does_not_follow_is_failed(tmp_path: Path) -> None:
    """The board answers its status query but its contact stays open (a stuck relay, or
    on_bytes for another channel): read back, the screen is failed, not on."""
    with (
        PtyPair(tmp_path / "ttyUSB1") as pair,
        RelaySim(pair.sim_end, on=b"\xee", off=OFF, query=QUERY, on_reply=YES, off_reply=NO),
    ):
        switch = serial_relay(pair.driver_end, query_bytes=QUERY, on_reply=YES, off_reply=NO)
        power = ScreenPower(switch)
        power.apply(wanted(at("12:00"), on_hours=ON_HOURS, steps=(), emergency=False))
        assert power.power == "failed" and "reports off" in (power.error or "")
        switch.close()


def test_gpio_relay_failure_is_failed_not_off() -> None:
    power = ScreenPower(RelaySwitch(GpioAmplifier(StrictLine(fail=True))))
    power.apply(wanted(at("23:00"), on_hours=ON_HOURS, steps=(), emergency=False))
    assert power.power == "failed" and "Input/output error" in (power.error or "")
