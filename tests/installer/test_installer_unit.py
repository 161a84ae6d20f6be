"""The systemd unit and the shell scripts, checked by the tools systemd and CI use.

`systemd-analyze verify` only warns (exit 0) on an unknown key, so any output on
stderr is a failure (TESTING-NOTES). The hardening directives are read back from
the unit as systemd parses it (`systemd-analyze cat-config` is not needed: the file
has no drop-ins here), so a typo that systemd ignores fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.agentproc import REPO

UNIT = REPO / "systemd" / "tcs-agent.service"
INSTALLED_EXE = "/opt/tcs-agent/current/venv/bin/tcs-agent"
GUARD = "/opt/tcs-agent/update-guard"


def _directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_verifies_clean(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).parent / "tcs-agent")
    local = tmp_path / "tcs-agent.service"
    local.write_text(UNIT.read_text().replace(INSTALLED_EXE, exe)
                     .replace(GUARD, str(REPO / "scripts" / "update-guard.sh")))
    out = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


def test_unit_is_hardened_but_keeps_what_the_agent_needs() -> None:
    d = _directives()
    assert d["Type"] == ["notify"] and d["WatchdogSec"] == ["30"]
    assert d["UMask"] == ["0077"]
    assert d["User"] == ["tcs-agent"] and d["Group"] == ["tcs-agent"]
    # The installer creates the user and group; no group that may not exist is named.
    assert "SupplementaryGroups" not in d
    families = set(d["RestrictAddressFamilies"][0].split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    # @clock and CAP_SYS_TIME, and nothing more: the modem's network time or an RTC
    # sets the clock on a Pi without NTP (agent/clock_sources.py).
    assert d["SystemCallFilter"] == ["@system-service @clock"]
    assert d["AmbientCapabilities"] == ["CAP_SYS_TIME"]
    for flag in ("RestrictNamespaces", "NoNewPrivileges", "ProtectHome", "PrivateTmp",
                 "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
                 "RestrictSUIDSGID", "LockPersonality"):
        assert d[flag] == ["true"], flag
    assert d["ProtectSystem"] == ["strict"] and d["CapabilityBoundingSet"] == ["CAP_SYS_TIME"]
    # Device access for sound, framebuffer, serial, GPIO and SPI stays.
    for absent in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock",
                   "ProcSubset", "PrivateUsers", "MemoryDenyWriteExecute"):
        assert absent not in d, absent
    # The start-up check is the one `run` applies, not the technician's stricter one.
    cfg = "/etc/tcs-agent/agent.toml"
    # The update guard first (agent.update's rollback of a release that cannot start).
    assert d["ExecStartPre"] == [f"-{GUARD}", f"{INSTALLED_EXE} config check --startup {cfg}"]
    # Writable for agent.update, and only that beside the state directory.
    assert d["ReadWritePaths"] == ["/opt/tcs-agent"]
    assert d["ExecStart"] == [f"{INSTALLED_EXE} run -c {cfg}"]
    assert d["Restart"] == ["always"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shell_scripts_are_shellcheck_clean() -> None:
    scripts = sorted(str(p) for p in (REPO / "scripts").glob("*.sh"))
    assert any(s.endswith("install.sh") for s in scripts)
    out = subprocess.run(["shellcheck", "--severity=style", *scripts], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
