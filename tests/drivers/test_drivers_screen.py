"""Screen power by schedule and emergency, checked against a fake `cec-client` on PATH
(no HDMI here) that records what it was asked and fails on anything unexpected."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.config import BrightnessStep, QuietHours
from drivers.screen import (
    Backlight,
    CecSwitch,
    DpmsSwitch,
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
