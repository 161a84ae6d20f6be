"""Console config: relative paths, flag overrides, every problem listed with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.central.settings import SettingsError, load_settings


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("central.pass", "ca.pem", "key.pem", "devices.toml"):
        (folder / name).write_text("secret\n")
    path = folder / "central.toml"
    path.write_text(text)
    return path


GOOD = """
[broker]
url = "mqtts://broker.example.vn"
username = "central"
password_file = "central.pass"
ca_file = "ca.pem"
[signing]
kid = "vn-48-emergency"
key_file = "key.pem"
issuer = "vn-48"
[devices]
file = "devices.toml"
"""


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path / "etc", GOOD)
    s = load_settings(path, need_signing=True, cwd=tmp_path)
    assert s.broker is not None and s.signing is not None
    assert s.broker.ca_file == tmp_path / "etc" / "ca.pem"
    assert s.broker.password == "secret"  # first line only, newline dropped
    assert (s.broker.host, s.broker.port, s.broker.tls) == ("broker.example.vn", 8883, True)
    assert s.broker.client_id == "central"
    assert s.signing.key_file == tmp_path / "etc" / "key.pem"
    assert s.devices_file == tmp_path / "etc" / "devices.toml"
    assert s.warnings == ()


def test_flags_override_the_file_and_resolve_against_cwd(tmp_path: Path) -> None:
    path = write(tmp_path / "etc", GOOD)
    (tmp_path / "other.pem").write_text("x")
    s = load_settings(path, {"broker.url": "mqtt://127.0.0.1:1884", "broker.keepalive_s": 30,
                             "signing.key_file": "other.pem", "broker.username": None},
                      need_signing=True, cwd=tmp_path)
    assert s.broker is not None and s.signing is not None
    assert (s.broker.host, s.broker.port, s.broker.tls, s.broker.keepalive_s) == (
        "127.0.0.1", 1884, False, 30)
    assert s.broker.username == "central"  # a flag left unset does not erase the file's value
    assert s.signing.key_file == tmp_path / "other.pem"


def test_every_problem_is_listed_with_file_section_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
[broker]
url = "http://x"
username = ""
keepalive_s = 1
ca_file = "missing.pem"
colour = "blue"
[signing]
kid = "k"
""")
    with pytest.raises(SettingsError) as info:
        load_settings(path, need_signing=True)
    src = path.resolve()
    problems = info.value.problems
    assert f"{src}:broker.colour: unknown key" in problems
    assert any(p.startswith(f"{src}:broker.url: scheme must be mqtt:// or mqtts://")
               for p in problems)
    assert any(p.startswith(f"{src}:broker.username: must be a non-empty string")
               for p in problems)
    assert any(p.startswith(f"{src}:broker.keepalive_s: must be between 5") for p in problems)
    assert any(p.startswith(f"{src}:broker.ca_file: file ") for p in problems)
    assert f"{src}:signing.key_file: is required" in problems
    assert f"{src}:signing.issuer: is required" in problems


def test_flag_problems_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(None, {"broker.url": "mqtts://h", "broker.keepalive_s": "soon"},
                      cwd=tmp_path)
    assert "--keepalive: must be a number, not 'soon'" in info.value.problems
    assert any(p.startswith("--username: is required") for p in info.value.problems)


def test_plain_mqtt_to_a_remote_host_warns(tmp_path: Path) -> None:
    s = load_settings(None, {"broker.url": "mqtt://broker.example.vn",
                             "broker.username": "central"}, cwd=tmp_path)
    assert s.broker is not None and s.broker.port == 1883
    assert len(s.warnings) == 1 and "password in clear" in s.warnings[0]


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        load_settings(tmp_path / "nope.toml")
