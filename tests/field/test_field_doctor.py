"""`tcs-agent doctor` against a real Mosquitto: a healthy device passes every check, and
each broken set-up a technician meets is named by the right check, with a fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.agentproc import REPO, TrustKey, agent_config, run_cli
from support.config import make_tls_files

from agent.doctor import CHECK_IDS, Check, Environment, run_checks

GROUPS = ("vn-48", "vn-48-490")


def healthy_env(**kw: Any) -> Environment:
    base: dict[str, Any] = {"kernel_synced": lambda: True, "rtc_set_clock": lambda: False}
    base.update(kw)
    return Environment(**base)


def make_device(tmp_path: Path, broker: Any, extra: str = "") -> Path:
    cfg = agent_config(tmp_path / "dev", broker, "dev-0001", GROUPS, [TrustKey("vn-48-ops")],
                       extra=extra)  # fmt: skip
    out = run_cli("enroll", "-c", str(cfg))
    assert out.returncode == 0, out.stderr
    return cfg


def checks(cfg: Path, env: Environment | None = None) -> dict[str, Check]:
    return {c.id: c for c in run_checks(cfg, env or healthy_env())}


def only_failure(cfg: Path, env: Environment | None = None) -> Check:
    results = checks(cfg, env)
    failed = [c for c in results.values() if not c.ok]
    assert len(failed) == 1, [(c.id, c.detail.en()) for c in failed]
    assert failed[0].fix is not None and failed[0].fix.en().strip()
    return failed[0]


@contextmanager
def tmpfs(folder: Path, size: str = "1m") -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                   check=True)  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_healthy_device_passes_every_check_and_json_has_the_ids(
    tmp_path: Path, broker: Any
) -> None:
    cfg = make_device(tmp_path, broker)
    results = checks(cfg)
    assert all(c.ok for c in results.values()), {
        c.id: c.detail.en() for c in results.values() if not c.ok
    }
    assert set(results) == {
        "config", "device_key", "broker_reach", "broker_tls", "broker_auth", "trust_keys",
        "clock", "disk", "storage",
    }  # fmt: skip
    # No RTC and no modem: NTP alone is a warning worth acting on, not a failure.
    assert results["clock"].fix is not None and "RTC" in results["clock"].fix.en()

    # The CLI's --json output: only the documented ids, each with its four fields.
    out = subprocess.run(
        [sys.executable, "-m", "agent", "doctor", "-c", str(cfg), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    doc = json.loads(out.stdout)
    for c in doc["checks"]:
        assert set(c) == {"id", "ok", "detail", "fix"} and c["id"] in CHECK_IDS
    ids = [c["id"] for c in doc["checks"]]
    assert ids[:3] == ["config", "device_key", "broker_reach"]
    # This machine's kernel clock may or may not be NTP-synced; everything else passes.
    assert out.returncode == (0 if all(c["ok"] for c in doc["checks"]) else 1)
    assert all(c["ok"] for c in doc["checks"] if c["id"] != "clock")


def rewrite(cfg: Path, old: str, new: str) -> None:
    text = cfg.read_text()
    assert old in text, old
    cfg.write_text(text.replace(old, new, 1))


Breaker = Callable[[Path, Any, Path], Environment | None]


def wrong_password(cfg: Path, broker: Any, tmp: Path) -> None:
    bad = tmp / "wrong.pass"
    bad.write_text("not-the-password\n")
    rewrite(cfg, str(broker.password_file("dev-0001")), str(bad))


def broker_down(cfg: Path, broker: Any, tmp: Path) -> None:
    broker.stop()


def unknown_ca(cfg: Path, broker: Any, tmp: Path) -> None:
    other = make_tls_files(tmp / "other-ca")
    rewrite(cfg, str(broker.ca_file), str(other.ca))


def missing_key(cfg: Path, broker: Any, tmp: Path) -> None:
    (cfg.parent / "device.key").unlink()


def no_audio_device(cfg: Path, broker: Any, tmp: Path) -> None:
    rewrite(cfg, 'output = "none"', 'output = "USB Audio Device"')


def missing_framebuffer(cfg: Path, broker: Any, tmp: Path) -> None:
    rewrite(
        cfg,
        'kind = "none"',
        f'kind = "framebuffer"\npath = "{tmp}/fb7"\nwidth = 320\nheight = 240',
    )


def full_disk(cfg: Path, broker: Any, tmp: Path) -> None:
    state = cfg.parent / "state"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(state)], check=True)
    with (state / "filler").open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def read_only_storage(cfg: Path, broker: Any, tmp: Path) -> None:
    state = cfg.parent / "state"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", str(state)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)


@pytest.mark.parametrize(
    ("breaker", "check_id", "words"),
    [
        (wrong_password, "broker_auth", "password"),
        (broker_down, "broker_reach", "broker is running"),
        (unknown_ca, "broker_tls", "ca_file"),
        (missing_key, "device_key", "enroll"),
        (no_audio_device, "audio", "[audio] output"),
        (missing_framebuffer, "display", "[display] path"),
        (full_disk, "disk", "free space"),
        (read_only_storage, "storage", "SD card"),
    ],
)
def test_broken_setup_is_named_with_a_fix(
    tmp_path: Path, broker: Any, breaker: Breaker, check_id: str, words: str
) -> None:
    cfg = make_device(tmp_path, broker)
    (cfg.parent / "state").mkdir(exist_ok=True)
    try:
        breaker(cfg, broker, tmp_path)
        failed = only_failure(cfg)
        assert failed.id == check_id, (failed.id, failed.detail.en())
        assert failed.fix is not None and words in failed.fix.en()
    finally:
        subprocess.run(["umount", "-l", str(cfg.parent / "state")], check=False,
                       capture_output=True)  # fmt: skip


def test_clock_unsynced_is_named(tmp_path: Path, broker: Any) -> None:
    cfg = make_device(tmp_path, broker)
    failed = only_failure(cfg, healthy_env(kernel_synced=lambda: False))
    assert failed.id == "clock"
    assert failed.fix is not None and "NTP" in failed.fix.en()


def test_every_check_runs_despite_config_problems(tmp_path: Path, broker: Any) -> None:
    cfg = make_device(tmp_path, broker)
    rewrite(cfg, "[report]", "[report]\nheartbeat_seconds = 60")
    (cfg.parent / "device.key").unlink()
    results = checks(cfg)
    assert not results["config"].ok and "heartbeat_seconds" in results["config"].detail.en()
    assert not results["device_key"].ok
    assert results["broker_auth"].ok and results["storage"].ok  # still checked


def test_text_output_one_line_per_check_with_marks(tmp_path: Path, broker: Any) -> None:
    cfg = make_device(tmp_path, broker)
    (cfg.parent / "device.key").unlink()
    env = dict(os.environ, LANG="C.UTF-8", LANGUAGE="")
    out = subprocess.run([sys.executable, "-m", "agent", "doctor", "-c", str(cfg)],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=60)  # fmt: skip
    assert out.returncode == 1
    assert "✗ device_key: device key" in out.stdout
    assert "→ run `tcs-agent enroll" in out.stdout
    assert "✓ broker_auth:" in out.stdout
