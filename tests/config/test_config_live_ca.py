"""`[audio] live_ca_file`: the CA certificates (PEM) a province's https live streams are
signed by, trusted by the relay besides the system store (docs/PROTOCOL-NOTES.md)."""

from __future__ import annotations

from pathlib import Path

from support.agentproc import run_cli
from support.config import good_config_text, make_tls_files

from agent.config import parse_config

QUIET = 'quiet_hours = "22:00-05:00"\n'


def _with(text: str, line: str) -> str:
    assert text.count(QUIET) == 1, "fixture changed"
    return text.replace(QUIET, QUIET + line + "\n")


def test_live_ca_file_resolves_against_the_config_folder(tmp_path: Path) -> None:
    make_tls_files(tmp_path / "tls")
    text = _with(good_config_text(tmp_path), 'live_ca_file = "tls/ca.pem"')
    cfg = parse_config(text, tmp_path / "agent.toml")
    assert cfg.audio.live_ca_file == tmp_path / "tls" / "ca.pem"
    assert parse_config(good_config_text(tmp_path), tmp_path / "a.toml").audio.live_ca_file is None


def test_config_check_names_a_live_ca_file_that_is_not_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "province-ca.pem").write_text("not a certificate\n")
    cfg = tmp_path / "agent.toml"
    cfg.write_text(_with(good_config_text(tmp_path), 'live_ca_file = "province-ca.pem"'))
    check = run_cli("config", "check", str(cfg))
    assert check.returncode != 0
    assert check.stdout.strip().splitlines() == [
        f"{cfg}:audio.live_ca_file: {tmp_path / 'province-ca.pem'} holds no PEM certificate "
        "('-----BEGIN CERTIFICATE-----')"
    ], check.stdout

    cfg.write_text(_with(good_config_text(tmp_path), 'live_ca_file = "nowhere.pem"'))
    check = run_cli("config", "check", str(cfg))
    assert check.returncode != 0
    assert f"{cfg}:audio.live_ca_file: {tmp_path / 'nowhere.pem'} does not exist" in check.stdout
