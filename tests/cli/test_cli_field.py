"""What a new technician tried on a device (issue 10), run as real subprocesses:
time zones, enroll/id before the broker files exist, config check's technician
checks (example trust keys, secret file modes, audio output), config get/set,
cache ls/verify on wrong folders, logs, and the help texts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from support.agentproc import REPO, run_cli
from support.config import good_config_text, public_b64
from support.pulse import pulse  # noqa: F401  (fixture)

from agent.cache import cli as cache_cli
from agent.config import ConfigError, parse_config
from agent.configcheck import EXAMPLE_TRUST_KEYS


def _problems(text: str, folder: Path) -> list[str]:
    try:
        parse_config(text, folder / "agent.toml")
    except ConfigError as exc:
        return exc.problems
    return []


def _config(tmp_path: Path, output: str = "none", **replace: str) -> Path:
    """good_config_text with [audio] output set (this machine has no sound card)."""
    text = good_config_text(tmp_path).replace(
        'quiet_hours = "22:00-05:00"', f'quiet_hours = "22:00-05:00"\noutput = "{output}"')
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def _no_traceback(out: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in out.stdout + out.stderr, out.stderr


# ---- time zones -------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["Asia/Hanoi", "Hanoi", "Hà Nội", "ICT", "GMT+7", "UTC+7",
                                      "UTC+07:00"])
def test_vietnamese_spellings_suggest_ho_chi_minh_only(tmp_path: Path, spelling: str) -> None:
    text = good_config_text(tmp_path).replace('"Asia/Ho_Chi_Minh"', f'"{spelling}"')
    [problem] = _problems(text, tmp_path)
    assert "device.timezone" in problem
    assert "did you mean 'Asia/Ho_Chi_Minh' (UTC+07:00)?" in problem
    # The old dangerous hints: a different clock offered as a fix.
    for wrong in ("Yangon", "GMT+0", "UCT", "Manila"):
        assert wrong not in problem


def test_posix_etc_gmt_plus_seven_is_flagged(tmp_path: Path) -> None:
    text = good_config_text(tmp_path).replace('"Asia/Ho_Chi_Minh"', '"Etc/GMT+7"')
    [problem] = _problems(text, tmp_path)
    assert "UTC-07:00" in problem and "Asia/Ho_Chi_Minh" in problem


def test_a_stated_other_offset_suggests_only_zones_with_that_offset(tmp_path: Path) -> None:
    text = good_config_text(tmp_path).replace('"Asia/Ho_Chi_Minh"', '"GMT+9"')
    [problem] = _problems(text, tmp_path)
    offsets = re.findall(r"\(UTC([+-]\d\d:\d\d)\)", problem)
    assert offsets and set(offsets) == {"+09:00"}


def test_config_check_ok_prints_offset_and_local_time(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    out = run_cli("config", "check", str(cfg))
    assert out.returncode == 0, out.stdout
    assert re.search(r"time zone Asia/Ho_Chi_Minh \(UTC\+07:00\), local time now "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d", out.stdout), out.stdout


# ---- enroll and id ----------------------------------------------------------------


def test_enroll_makes_the_key_before_broker_files_exist_and_id_prints_it(tmp_path: Path) -> None:
    cfg = _config(tmp_path, **{'url = "mqtt://127.0.0.1:1883"':
                               'url = "mqtts://broker.example.vn:8883"\nusername = "dev-0001"\n'
                               'password_file = "broker.pass"\ncert_file = "device.crt"\n'
                               'key_file = "device.pem"'})
    (tmp_path / "device.key").unlink()
    enrolled = run_cli("enroll", "-c", str(cfg))
    assert enrolled.returncode == 0, enrolled.stderr
    assert "(created)" in enrolled.stdout
    assert "problem(s) remain" in enrolled.stderr  # the broker files, said without failing
    ident = run_cli("id", "-c", str(cfg))
    assert ident.returncode == 0, ident.stderr
    for line in ("public_key: ", "fingerprint: SHA256:"):
        value = next(x for x in ident.stdout.splitlines() if x.startswith(line))
        assert value in enrolled.stdout


def test_id_without_a_key_says_to_enroll(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    (tmp_path / "device.key").unlink()
    out = run_cli("id", "-c", str(cfg))
    assert out.returncode == 1 and "tcs-agent enroll -c" in out.stderr
    _no_traceback(out)


def test_enroll_to_an_unwritable_path_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file")
    cfg = _config(tmp_path, **{'key_file = "device.key"': 'key_file = "not-a-dir/device.key"'})
    out = run_cli("enroll", "-c", str(cfg))
    assert out.returncode == 1
    assert "cannot create the device key" in out.stderr and "not-a-dir" in out.stderr
    _no_traceback(out)


# ---- config check: what only a technician can fix ---------------------------------


def test_example_trust_keys_list_matches_the_example_file() -> None:
    text = (REPO / "config" / "agent.example.toml").read_text()
    assert set(re.findall(r'^public_key = "(.+)"$', text, re.M)) == EXAMPLE_TRUST_KEYS


def test_config_check_refuses_the_example_trust_keys(tmp_path: Path) -> None:
    example = next(iter(sorted(EXAMPLE_TRUST_KEYS)))
    text = good_config_text(tmp_path)
    first_key = re.search(r'public_key = "(.+)"', text)
    assert first_key is not None
    cfg = tmp_path / "agent.toml"
    cfg.write_text(text.replace(first_key.group(1), example))
    out = run_cli("config", "check", str(cfg))
    assert out.returncode == 1
    assert f"{cfg}:trust[0].public_key: is the example's throw-away key" in out.stdout
    # The agent itself still starts with it (and the unit's start-up check passes).
    assert run_cli("config", "check", "--startup", str(cfg)).returncode == 0


def test_config_check_flags_secret_files_readable_by_others(tmp_path: Path) -> None:
    (tmp_path / "broker.pass").write_text("secret\n")
    cfg = _config(tmp_path, **{"keepalive_s = 60": 'keepalive_s = 60\nusername = "dev-0001"\n'
                                                   'password_file = "broker.pass"'})
    os.chmod(tmp_path / "broker.pass", 0o644)
    os.chmod(tmp_path / "device.key", 0o640)
    out = run_cli("config", "check", str(cfg))
    assert out.returncode == 1
    assert "device.key_file:" in out.stdout and "(mode 0640)" in out.stdout
    assert "broker.password_file:" in out.stdout and "(mode 0644)" in out.stdout
    os.chmod(tmp_path / "broker.pass", 0o600)
    os.chmod(tmp_path / "device.key", 0o600)
    assert run_cli("config", "check", str(cfg)).returncode == 0


def test_audio_devices_lists_outputs_and_check_names_the_nearest(
    tmp_path: Path, pulse: object  # noqa: F811
) -> None:
    listed = run_cli("audio", "devices")
    assert listed.returncode == 0, listed.stderr
    assert "pulse" in listed.stdout
    cfg = _config(tmp_path, output="pulsse")
    out = run_cli("config", "check", str(cfg))
    assert out.returncode == 1
    assert f"{cfg}:audio.output: no output device matches 'pulsse'" in out.stdout
    assert "(nearest: 'pulse')" in out.stdout
    good = cfg.read_text().replace('"pulsse"', '"pulse"')
    cfg.write_text(good)
    assert run_cli("config", "check", str(cfg)).returncode == 0


# ---- config get / set -------------------------------------------------------------


def test_config_set_validates_keeps_comments_and_mode(tmp_path: Path) -> None:
    cfg = _config(tmp_path, **{"[report]": "# the technician's note\n[report]"})
    os.chmod(cfg, 0o640)
    before = cfg.read_text()
    bad = run_cli("config", "set", "device.timezone", "Asia/Hanoi", "-c", str(cfg))
    assert bad.returncode == 1 and "Asia/Ho_Chi_Minh" in bad.stderr
    assert cfg.read_text() == before, "an invalid value must never be written"
    typo = run_cli("config", "set", "report.heartbeat_secs", "30", "-c", str(cfg))
    assert typo.returncode == 1 and "did you mean 'heartbeat_s'" in typo.stderr
    ok = run_cli("config", "set", "report.heartbeat_s", "30", "-c", str(cfg))
    assert ok.returncode == 0, ok.stderr
    assert "heartbeat_s = 30\n" in cfg.read_text()
    assert "# the technician's note\n[report]" in cfg.read_text()
    assert cfg.stat().st_mode & 0o777 == 0o640
    got = run_cli("config", "get", "report.heartbeat_s", "-c", str(cfg))
    assert got.stdout.strip() == "30"
    unknown = run_cli("config", "get", "device.timezon", "-c", str(cfg))
    assert unknown.returncode == 1 and "did you mean 'timezone'" in unknown.stderr
    zone = run_cli("config", "get", "device.timezone", "-c", str(cfg))
    assert zone.stdout.strip() == "Asia/Ho_Chi_Minh"
    groups = run_cli("config", "set", "device.groups", '["vn-48", "vn-48-491"]', "-c", str(cfg))
    assert groups.returncode == 0, groups.stderr
    assert 'groups = ["vn-48", "vn-48-491"]' in cfg.read_text()


def test_config_get_set_reach_the_screen_relay(tmp_path: Path) -> None:
    """A technician who re-plugs the screen's relay board sets its new port in the nested
    [display.relay] table; a typo gets a did-you-mean, and a relay the display does not
    use is refused and nothing is written."""
    relay = (
        '[display]\npower_control = "relay"\n[display.relay]\nkind = "serial-relay"\n'
        'port = "/dev/ttyUSB1"\non_bytes = "A0 02 01 A3"\noff_bytes = "A0 02 00 A2"\n\n[report]'
    )
    cfg = _config(tmp_path, **{"[report]": relay})
    got = run_cli("config", "get", "display.relay.port", "-c", str(cfg))
    assert got.returncode == 0 and got.stdout.strip() == "/dev/ttyUSB1", got.stderr
    new_port = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"
    ok = run_cli("config", "set", "display.relay.port", new_port, "-c", str(cfg))
    assert ok.returncode == 0, ok.stderr
    assert parse_config(cfg.read_text(), cfg).display.relay.port == new_port  # type: ignore[union-attr]
    typo = run_cli("config", "set", "display.relay.prot", "/dev/ttyUSB2", "-c", str(cfg))
    assert typo.returncode == 1 and "did you mean 'port'" in typo.stderr
    # The screen relay on a device whose screen is not switched by one: refused, unwritten.
    plain = _config(tmp_path / "plain")
    before = plain.read_text()
    stray = run_cli("config", "set", "display.relay.kind", "gpio", "-c", str(plain))
    assert stray.returncode == 1 and 'power_control = "relay"' in stray.stderr, stray.stderr
    assert plain.read_text() == before
    _no_traceback(stray)


# ---- cache ls / verify on wrong folders -------------------------------------------


@pytest.mark.parametrize("command", ["ls", "verify"])
def test_cache_on_a_mistyped_folder_says_so_and_creates_nothing(
    tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "var" / "lib" / "tcs-agnet"
    out = run_cli("cache", command, "--dir", str(missing))
    assert out.returncode == 2 and "does not exist" in out.stderr
    assert not (tmp_path / "var").exists()
    _no_traceback(out)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    out = run_cli("cache", command, "--dir", str(a_file))
    assert out.returncode == 2 and "is not a folder" in out.stderr
    _no_traceback(out)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_cache_ls_on_a_folder_the_user_cannot_read(tmp_path: Path) -> None:
    # pytest's own tmp folders are closed to other users all the way up: use one that
    # `nobody` can reach, holding a state folder it may not read.
    base = Path(tempfile.mkdtemp(prefix="tcs-unreadable-"))
    os.chmod(base, 0o755)
    private = base / "state"
    (private / "cache").mkdir(parents=True)
    os.chmod(private, 0o700)
    # Forked, not exec'd: the test's Python may live where `nobody` cannot run it.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        code = 99
        try:
            sys.stdout = sys.stderr = os.fdopen(w, "w")
            os.setgid(65534)
            os.setuid(65534)
            code = cache_cli.main(["ls", "--dir", str(private)])
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        output = f.read()
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(base)
    assert os.waitstatus_to_exitcode(status) == 2, output
    assert "not readable by this user" in output and "Traceback" not in output


# ---- logs and help ----------------------------------------------------------------


def test_logs_without_journalctl_is_a_message(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no journalctl on PATH
    out = subprocess.run([sys.executable, "-m", "agent", "logs"], capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=30, check=False)
    assert out.returncode == 1 and "journalctl is not installed" in out.stderr
    _no_traceback(out)


def test_logs_runs_journalctl_for_the_unit(tmp_path: Path) -> None:
    fake = tmp_path / "journalctl"
    fake.write_text('#!/bin/sh\necho "journalctl $*"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    out = subprocess.run([sys.executable, "-m", "agent", "logs", "-n", "50", "--errors"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=30,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["journalctl", "-u", "tcs-agent.service", "--no-pager", "-o",
                                  "short-iso", "-n", "50", "-p", "warning"]


def test_log_level_lists_its_values_and_works_after_the_subcommand(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    helped = run_cli("--help")
    assert "{debug,info,warning,error}" in helped.stdout
    for cmd in ("run", "config", "enroll", "id", "cache", "audio", "logs"):
        assert re.search(rf"^\s+{cmd}\s", helped.stdout, re.M), cmd
    after = run_cli("config", "check", str(cfg), "--log-level", "debug")
    assert after.returncode == 0, after.stderr
    wrong = run_cli("config", "check", str(cfg), "--log-level", "loud")
    assert wrong.returncode == 2 and "invalid choice: 'loud'" in wrong.stderr


def test_public_key_helper_is_not_an_example_key() -> None:
    assert public_b64() not in EXAMPLE_TRUST_KEYS
