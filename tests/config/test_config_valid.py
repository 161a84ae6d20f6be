"""What a correct configuration becomes: the values others read, resolved and defaulted."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.config import good_config_text, make_tls_files

from agent.config import Config, ConfigError, QuietHours, check_main, load_config, parse_config
from agent.jws import create_private_key

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "agent.example.toml"


def test_good_config_values_and_defaults(tmp_path: Path) -> None:
    cfg = parse_config(good_config_text(tmp_path), tmp_path / "agent.toml")
    assert cfg.source == tmp_path / "agent.toml"
    assert cfg.device.id == "dev-0001"
    assert cfg.device.groups == ("vn-48", "vn-48-490")
    assert cfg.device.timezone_name == "Asia/Ho_Chi_Minh"
    assert cfg.device.timezone.key == "Asia/Ho_Chi_Minh"
    assert (cfg.broker.scheme, cfg.broker.host, cfg.broker.port, cfg.broker.tls) == (
        "mqtt",
        "127.0.0.1",
        1883,
        False,
    )
    assert cfg.broker.username is None and cfg.broker.password is None
    assert cfg.broker.session_expiry_s == 604800 and cfg.broker.connect_timeout_s == 10.0
    assert [k.kid for k in cfg.trust] == ["vn-48-emergency", "commune-operator"]
    assert all(len(k.public_key) == 32 for k in cfg.trust)
    assert cfg.audio.quiet_hours == QuietHours(22 * 60, 5 * 60, "22:00-05:00")
    assert cfg.audio.output == "default" and cfg.audio.sample_rate == 48000
    assert cfg.display.kind == "none" and cfg.clock.trust == "auto"
    assert cfg.cache.max_parallel == 2 and cfg.storage.outbox_quota_mb == 64
    assert cfg.alerts.language == "vi" and cfg.alerts.play_cap_test is False
    assert cfg.report.heartbeat_s == 60


def test_config_is_immutable_and_hashable(tmp_path: Path) -> None:
    cfg = parse_config(good_config_text(tmp_path), tmp_path / "agent.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.device.id = "other"  # type: ignore[misc]
    assert hash(cfg) == hash(cfg)  # usable as a cache key; nothing mutable inside


def test_trust_key_policy(tmp_path: Path) -> None:
    cfg = parse_config(good_config_text(tmp_path), tmp_path / "agent.toml")
    emergency = cfg.trust_key("vn-48-emergency")
    operator = cfg.trust_key("commune-operator")
    assert emergency is not None and operator is not None
    assert emergency.allows("alert.start", 100)
    assert not emergency.allows("volume.set", 0)
    assert operator.allows("schedule.set", 49)
    assert not operator.allows("schedule.set", 50)  # a commune cannot raise priority
    assert not operator.allows("alert.start", 0)
    assert cfg.trust_key("nobody") is None


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    (folder / "pw").parent.mkdir(parents=True)
    (folder / "pw").write_text("s3cret\r\n")
    text = good_config_text(folder).replace(
        "keepalive_s = 60", 'keepalive_s = 60\nusername = "dev-0001"\npassword_file = "pw"'
    )
    (folder / "agent.toml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(Path(os.path.relpath(folder / "agent.toml", elsewhere)))
    assert cfg.device.key_file == folder.resolve() / "device.key"
    assert cfg.storage.dir == folder.resolve() / "state"
    assert cfg.broker.password_file == folder.resolve() / "pw"
    # Trailing newline (CRLF too) stripped: a password typed with `echo` must work.
    assert cfg.broker.password == "s3cret"
    assert "s3cret" not in repr(cfg)  # never in a log line


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port"),
    [
        ("mqtts://broker.example.vn", "mqtts", "broker.example.vn", 8883),
        ("mqtts://Broker.Example.VN:18883", "mqtts", "broker.example.vn", 18883),
        ("mqtt://localhost", "mqtt", "localhost", 1883),
        ("mqtt://[::1]:1884", "mqtt", "::1", 1884),
        ("mqtt://127.0.0.2", "mqtt", "127.0.0.2", 1883),
    ],
)
def test_broker_url_forms(tmp_path: Path, url: str, scheme: str, host: str, port: int) -> None:
    text = good_config_text(tmp_path).replace("mqtt://127.0.0.1:1883", url)
    broker = parse_config(text, tmp_path / "agent.toml").broker
    assert (broker.scheme, broker.host, broker.port, broker.tls) == (
        scheme,
        host,
        port,
        scheme == "mqtts",
    )


def test_display_kinds_that_are_valid(tmp_path: Path) -> None:
    base = good_config_text(tmp_path)
    cfg = parse_config(
        base + '\n[display]\nkind = "image-dir"\npath = "frames"\nwidth = 64\nheight = 32\n',
        tmp_path / "agent.toml",
    )
    assert cfg.display.path == str(tmp_path / "frames")
    cfg = parse_config(
        base + '\n[display]\nkind = "max7219"\nwidth = 32\nheight = 8\n', tmp_path / "agent.toml"
    )
    assert (cfg.display.kind, cfg.display.width, cfg.display.height) == ("max7219", 32, 8)


def example_with_temp_paths(tmp_path: Path) -> Path:
    """The shipped example, its production paths pointed at real temporary files."""
    etc, var = tmp_path / "etc", tmp_path / "var"
    etc.mkdir()
    tls = make_tls_files(etc)
    tls.key.rename(etc / "device.pem")
    (etc / "broker.pass").write_text("hunter2\n")
    create_private_key(var / "device.key")
    text = EXAMPLE.read_text()
    assert "/etc/tcs-agent/" in text and "/var/lib/tcs-agent" in text
    text = text.replace("/etc/tcs-agent/", f"{etc}/").replace("/var/lib/tcs-agent", str(var))
    path = etc / "agent.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid_and_complete(tmp_path: Path) -> None:
    cfg = load_config(example_with_temp_paths(tmp_path))
    assert cfg.broker.password == "hunter2"
    assert cfg.broker.tls and cfg.broker.port == 8883
    assert cfg.broker.cert_file is not None and cfg.broker.key_file is not None
    assert [k.max_priority for k in cfg.trust] == [100, 49]
    # Every key the validator knows is shown (and so explained) in the example.
    text = EXAMPLE.read_text()
    for section in ("device", "broker", "storage", "cache", "audio", "display", "report"):
        assert f"\n[{section}]\n" in text
    for field in dataclasses.fields(Config):
        if field.name in ("source", "trust"):
            continue
        for sub in dataclasses.fields(getattr(cfg, field.name)):
            if sub.name in ("scheme", "host", "port", "tls", "password", "timezone_name"):
                continue  # derived, not written
            if (field.name, sub.name) == ("display", "relay"):  # a table: shown commented
                assert "\n# [display.relay]\n" in text
                continue
            assert re.search(rf"^{sub.name} = ", text, re.M), f"{field.name}.{sub.name}"


def test_check_main_on_good_and_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = example_with_temp_paths(tmp_path)
    assert check_main(good) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{good}: ok",
        "device dev-0001, broker mqtts://broker.example.vn:8883, 2 trust keys",
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        good.read_text()
        .replace('id = "dev-0001"', 'id = "dev_0001"')
        .replace("keepalive_s = 60", "keepalive_s = 0")
    )
    assert check_main(bad) == 1
    out = capsys.readouterr().out.splitlines()
    # Both problems, and no knock-on complaint (username vs. the invalid id).
    assert len(out) == 2, out
    assert out[0].startswith(f"{bad}:device.id: 'dev_0001' is not a valid id")
    assert out[1] == f"{bad}:broker.keepalive_s: must be between 5 and 1200, not 0"


def test_check_main_in_a_fresh_process(tmp_path: Path) -> None:
    """The same entry point the CLI wires, run as a real process (import has no side effects)."""
    path = tmp_path / "agent.toml"
    path.write_text("[device]\nid = 'dev-0001'\n")
    code = (
        "import sys; from pathlib import Path; from agent.config import check_main; "
        "sys.exit(check_main(Path(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{path}:broker: missing section",
        f"{path}:storage: missing section",
        f"{path}:device.groups: missing required key",
        f"{path}:device.key_file: missing required key",
        f"{path}:trust: missing section (at least one [[trust]] key is required)",
    ]
    assert done.stderr == ""


def test_config_error_is_an_exception_with_problems() -> None:
    err = ConfigError(["a:b: c", "a:d: e"])
    assert err.problems == ["a:b: c", "a:d: e"]
    assert str(err) == "a:b: c\na:d: e"
