"""The technician's commands, run as real subprocesses: enroll, config check, run refusing
a bad configuration (the systemd unit is tested in tests/installer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.agentproc import TrustKey, agent_config, run_cli

from agent import jws, reports


def test_enroll_creates_a_key_once_and_proofs_verify_with_it(tmp_path: Path, broker: Any) -> None:
    cfg = agent_config(tmp_path, broker, "dev-0001", ["vn-48"], [TrustKey("k")])
    first = run_cli("enroll", "-c", str(cfg))
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "device.key"
    assert key_file.stat().st_mode & 0o077 == 0, "device key must not be readable by others"
    assert "created" in first.stdout
    again = run_cli("enroll", "-c", str(cfg))
    assert "existing" in again.stdout
    pub = next(
        line.split(": ", 1)[1]
        for line in first.stdout.splitlines()
        if line.startswith("public_key: ")
    )
    assert pub in again.stdout, "enroll must not replace an existing identity"

    # What the device signs verifies against the public key it printed.
    token = reports.proof_token(jws.load_private_key(key_file), "dev-0001", {"id": "p1"}).decode()
    h, p, s = token.split(".")
    assert jws.verify_ed25519(jws.b64url_decode(pub), f"{h}.{p}".encode(), jws.b64url_decode(s))


def test_config_check_and_run_refuse_the_same_problems(tmp_path: Path, broker: Any) -> None:
    cfg = agent_config(tmp_path, broker, "dev-0001", ["vn-48"], [TrustKey("k")])
    assert run_cli("enroll", "-c", str(cfg)).returncode == 0
    ok = run_cli("config", "check", str(cfg))
    assert ok.returncode == 0 and "ok" in ok.stdout

    text = (
        cfg.read_text()
        .replace("heartbeat_s", "heartbeat_secs")
        .replace('timezone = "Asia/Ho_Chi_Minh"', 'timezone = "Asia/Hanoi_City"')
    )
    cfg.write_text(text)
    check = run_cli("config", "check", str(cfg))
    assert check.returncode != 0
    assert f"{cfg}:report.heartbeat_secs:" in check.stdout
    assert "did you mean 'heartbeat_s'" in check.stdout
    assert f"{cfg}:device.timezone:" in check.stdout

    run = run_cli("run", "-c", str(cfg), timeout=20)
    assert run.returncode != 0
    assert f"{cfg}:report.heartbeat_secs:" in run.stderr
    assert f"{cfg}:device.timezone:" in run.stderr
