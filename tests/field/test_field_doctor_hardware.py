"""doctor's modem, amplifier and screen relay checks against a simulated modem (socat
pty pair, fake sysfs) and a relay port that is there or not."""

from __future__ import annotations

from pathlib import Path

from support.config import good_config_text
from support.modem_sim import ModemSim, fake_usb_sysfs
from support.ptys import PtyPair

from agent.doctor import Check, Environment, run_checks


def doctor(tmp_path: Path, extra: str) -> dict[str, Check]:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(good_config_text(tmp_path) + extra)
    env = Environment(
        sys_root=tmp_path / "sys", dev_root=tmp_path / "dev", kernel_synced=lambda: True,
        timeout_s=0.5,
    )  # fmt: skip
    return {c.id: c for c in run_checks(cfg, env)}


MODEM = '\n[modem]\nusb_id = "2c7c:0125"\n'


def test_modem_answering_registered_not_answering_and_absent(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    absent = doctor(tmp_path, MODEM)["modem"]
    assert not absent.ok and absent.fix is not None and "lsusb" in absent.fix.en()
    fake_usb_sysfs(tmp_path / "sys", "ttyUSB2")
    with PtyPair(tmp_path / "dev" / "ttyUSB2") as pair, ModemSim(pair.sim_end) as sim:
        sim.echo = True
        good = doctor(tmp_path, MODEM)["modem"]
        assert good.ok and "Viettel" in good.detail.en() and "-73 dBm" in good.detail.en()
        sim.silent = True
        mute = doctor(tmp_path, MODEM)["modem"]
        assert not mute.ok and "does not answer" in mute.detail.en()
        assert mute.fix is not None and "ModemManager" in mute.fix.en()


def test_amplifier_relay_port(tmp_path: Path) -> None:
    relay = (
        '\n[amplifier]\nkind = "serial-relay"\nport = "{port}"\n'
        'on_bytes = "A0 01 01 A2"\noff_bytes = "A0 01 00 A1"\n'
    )
    missing = doctor(tmp_path, relay.format(port="/dev/ttyUSB42"))["amplifier"]
    assert not missing.ok and missing.fix is not None and "by-id" in missing.fix.en()
    with PtyPair(tmp_path / "ttyUSB0") as pair:
        present = doctor(tmp_path, relay.format(port=pair.driver_end))["amplifier"]
        assert present.ok, present.detail.en()
    assert "amplifier" not in doctor(tmp_path, "")  # not configured: left out


def test_screen_relay_port(tmp_path: Path) -> None:
    """doctor checks the screen's relay ([display.relay]) like the amplifier's, under its
    own name, and says which table to correct."""
    relay = (
        '\n[display]\npower_control = "relay"\n[display.relay]\nkind = "serial-relay"\n'
        'port = "{port}"\non_bytes = "A0 02 01 A3"\noff_bytes = "A0 02 00 A2"\n'
    )
    missing = doctor(tmp_path, relay.format(port="/dev/ttyUSB42"))["screen_relay"]
    assert not missing.ok and "/dev/ttyUSB42" in missing.detail.en()
    assert missing.fix is not None and "[display.relay] port" in missing.fix.en()
    with PtyPair(tmp_path / "ttyUSB0") as pair:
        present = doctor(tmp_path, relay.format(port=pair.driver_end))["screen_relay"]
        assert present.ok and str(pair.driver_end) in present.detail.en()
    checks = doctor(tmp_path, "")
    assert "screen_relay" not in checks and "amplifier" not in checks  # not configured


def test_file_that_is_not_toml_gets_config_and_clock_only(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[device\nid = "dev-0001"\n')
    results = {c.id: c for c in run_checks(cfg, Environment(kernel_synced=lambda: True))}
    assert list(results) == ["config", "clock"]
    assert not results["config"].ok and "invalid TOML" in results["config"].detail.en()
    assert results["config"].fix is not None and "config check" in results["config"].fix.en()
