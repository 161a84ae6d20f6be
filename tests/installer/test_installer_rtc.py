"""scripts/enable-rtc.sh: a DS3231-class RTC answering on I2C is enabled once in the Pi's
firmware config; nothing changes without a chip, with an RTC already in use, or off a Pi.
`i2cget` is a fake on PATH (no I2C bus here) that answers only the one probe expected."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "enable-rtc.sh"
OVERLAY = "dtoverlay=i2c-rtc,ds3231"


def _fake_i2cget(bin_dir: Path, *, chip: bool) -> Path:
    """An i2cget that fails loudly on any call but `-y 1 0x68 0x00 b`; `chip` says
    whether something answers there. Every call is logged."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "calls.log"
    fake = bin_dir / "i2cget"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        '[ "$*" = "-y 1 0x68 0x00 b" ] || { echo "unexpected i2cget $*" >&2; exit 99; }\n'
        + ("echo 0x12\nexit 0\n" if chip else "echo 'Error: Read failed' >&2\nexit 2\n")
    )
    fake.chmod(0o755)
    return log


def _run(tmp: Path, *, chip: bool, rtc0: bool = False, config: bool = True) -> str:
    sysfs = tmp / "sys"
    (sysfs / "class" / "rtc").mkdir(parents=True, exist_ok=True)
    if rtc0:
        (sysfs / "class" / "rtc" / "rtc0").mkdir(exist_ok=True)
    boot = tmp / "config.txt"
    if config and not boot.exists():
        boot.write_text("[all]\ndtparam=i2c_arm=on\n")
    _fake_i2cget(tmp / "bin", chip=chip)
    env = dict(os.environ, TCS_SYSFS_ROOT=str(sysfs), TCS_BOOT_CONFIG=str(boot),
               PATH=f"{tmp / 'bin'}:{os.environ['PATH']}")  # fmt: skip
    out = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert out.returncode == 0 and "unexpected" not in out.stderr, out.stderr
    return out.stdout


def test_a_fitted_chip_is_enabled_once(tmp_path: Path) -> None:
    first = _run(tmp_path, chip=True)
    assert "enabled" in first and "reboot" in first
    again = _run(tmp_path, chip=True)
    assert "already configured" in again
    text = (tmp_path / "config.txt").read_text()
    assert text.count(OVERLAY) == 1 and text.startswith("[all]\ndtparam=i2c_arm=on\n")


def test_no_chip_changes_nothing(tmp_path: Path) -> None:
    out = _run(tmp_path, chip=False)
    assert "no RTC chip" in out
    assert OVERLAY not in (tmp_path / "config.txt").read_text()
    assert (tmp_path / "bin" / "calls.log").read_text().split("\n")[0] == "-y 1 0x68 0x00 b"


def test_an_rtc_in_use_or_no_pi_is_left_alone(tmp_path: Path) -> None:
    assert "already in use" in _run(tmp_path / "a", chip=True, rtc0=True)
    assert OVERLAY not in (tmp_path / "a" / "config.txt").read_text()
    assert not (tmp_path / "a" / "bin" / "calls.log").exists()  # the bus was not probed
    assert "not a Pi" in _run(tmp_path / "b", chip=True, config=False)
    assert not (tmp_path / "b" / "config.txt").exists()
