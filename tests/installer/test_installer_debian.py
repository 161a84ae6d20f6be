"""scripts/install.sh in a real Debian 12 root (debootstrap), as a technician runs it.

Offline, from a wheel bundle made by scripts/build-bundle.sh: first with the config
skeleton (refused, nothing enabled), then with the example's trust keys (refused),
then with a real config (enabled), then once more (nothing changes), then
--uninstall (data kept) and --uninstall --purge. The files, modes, owners, user,
groups and unit it leaves are checked, and the unit is verified by
`systemd-analyze verify --root`. The Debian root is built once and cached
(tests/support/debroot.py); a first run on a machine needs the Debian mirror.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.agentproc import REPO
from support.config import public_b64
from support.debroot import RootUnavailable, fresh_root

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # a first debootstrap downloads ~250 MB
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and debootstrap need root"),
]

INSTALL = REPO / "scripts" / "install.sh"
# What a real device has that minbase lacks besides the installer's own packages.
EXTRA_PACKAGES = ("systemd",)
SHIPPED = ("scripts", "systemd", "config", "docs", "README.md", "pyproject.toml")


def _apt_packages() -> list[str]:
    out = subprocess.run(["bash", str(INSTALL), "--print-apt-packages"], check=False,
                         capture_output=True, text=True)
    # Not root-gated: the list is printed before the root check.
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installer inside the chroot, with a clean environment (no host pip config)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8"}
    return subprocess.run(
        ["chroot", str(root), "/bin/bash", "/src/scripts/install.sh", *args],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )


def _ids(root: Path, name: str) -> tuple[int, int, list[str]]:
    """uid, gid and supplementary group names of `name` in the chroot's own databases."""
    out = subprocess.run(["chroot", str(root), "id", name], capture_output=True, text=True,
                         check=True).stdout
    fields = dict(part.split("=", 1) for part in out.split())
    groups = [g.split("(")[1].rstrip(")") for g in fields["groups"].split(",")]
    return int(fields["uid"].split("(")[0]), int(fields["gid"].split("(")[0]), groups


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _good_config(trust_key: str) -> str:
    return f"""\
# technician's config: comments survive reinstalling
[device]
id = "dev-0042"
groups = ["vn-48", "vn-48-490"]
timezone = "Asia/Ho_Chi_Minh"
key_file = "/var/lib/tcs-agent/device.key"

[broker]
url = "mqtts://broker.example.vn:8883"

[[trust]]
kid = "vn-48-emergency"
public_key = "{trust_key}"
commands = ["alert.*", "schedule.set"]
max_priority = 100

[storage]
dir = "/var/lib/tcs-agent"

[audio]
output = "none"
"""


@pytest.fixture
def root(tmp_path: Path, bundle: Path) -> Iterator[Path]:
    try:
        r = fresh_root(tmp_path / "root", [*_apt_packages(), *EXTRA_PACKAGES])
    except RootUnavailable as exc:
        pytest.fail(str(exc))  # setup.sh installs debootstrap: missing is a real failure
    src = r / "src"
    src.mkdir()
    for name in SHIPPED:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, src / name)
    shutil.copytree(bundle, r / "bundle")
    yield r
    shutil.rmtree(r)  # ~1 GB; pytest would keep it with the last runs' tmp folders


def test_install_twice_refuse_example_keys_then_uninstall(root: Path) -> None:
    etc, state, opt = root / "etc/tcs-agent", root / "var/lib/tcs-agent", root / "opt/tcs-agent"
    unit = root / "etc/systemd/system/tcs-agent.service"
    wants = root / "etc/systemd/system/multi-user.target.wants/tcs-agent.service"

    # 1. Fresh device: everything installed, the skeleton refused, nothing enabled.
    first = _run(root, "--bundle", "/bundle", "--no-apt")
    assert first.returncode == 3, first.stdout + first.stderr
    assert "not enabling the service" in first.stdout
    assert not wants.exists()
    uid, gid, groups = _ids(root, "tcs-agent")
    # Device groups that exist in Debian are joined; Pi-only ones (gpio, spi) are not
    # invented and the unit names none of them.
    assert {"audio", "video", "dialout"} <= set(groups)
    assert not any(line.startswith("SupplementaryGroups")
                   for line in unit.read_text().splitlines())
    passwd = next(line for line in (root / "etc/passwd").read_text().splitlines()
                  if line.startswith("tcs-agent:"))
    assert passwd.endswith(":/var/lib/tcs-agent:/usr/sbin/nologin")
    assert os.readlink(opt / "current") == "releases/0.1.0"
    assert (opt / "releases/0.1.0/.complete").exists()
    assert os.access(opt / "current/venv/bin/tcs-agent", os.X_OK)
    # agent.update installs and switches releases as the agent; the guard is in place.
    assert (opt.stat().st_uid, (opt / "releases").stat().st_uid) == (uid, uid)
    assert os.access(opt / "update-guard", os.X_OK)
    skeleton = etc / "agent.toml"
    assert skeleton.read_text() == (REPO / "config/agent.example.toml").read_text()
    assert (_mode(etc), etc.stat().st_uid, etc.stat().st_gid) == (0o750, 0, gid)
    assert (_mode(skeleton), skeleton.stat().st_uid, skeleton.stat().st_gid) == (0o640, 0, gid)
    assert (_mode(state), state.stat().st_uid) == (0o750, uid)
    key = state / "device.key"
    assert (_mode(key), key.stat().st_uid) == (0o600, uid), "enroll made the key as the agent"
    identity = key.read_bytes()
    for doc in ("INSTALL.md", "README.md"):  # what the unit's Documentation= points to
        assert (root / "usr/share/doc/tcs-agent" / doc).is_file()
        assert f"file:///usr/share/doc/tcs-agent/{doc}" in unit.read_text()

    # 2. A config still holding the example's throw-away trust key: refused.
    example_key = "1ap0N1X2bd8IisHOURxwXoSCMpfCHFZqiSYwwguOYMw"
    skeleton.write_text(_good_config(example_key))
    second = _run(root, "--bundle", "/bundle", "--no-apt")
    assert second.returncode == 3
    assert "throw-away" in second.stdout and not wants.exists()

    # 3. The province's key: installed and enabled; the config and key are untouched.
    good = _good_config(public_b64())
    skeleton.write_text(good)
    third = _run(root, "--bundle", "/bundle", "--no-apt")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "already installed" in third.stdout
    assert wants.is_symlink()
    assert skeleton.read_text() == good and key.read_bytes() == identity

    # The wheel ships the compiled translations: a Vietnamese technician reads Vietnamese.
    vi = subprocess.run(["chroot", str(root), "env", "-i", "LANG=vi_VN.UTF-8",
                         "/usr/local/bin/tcs-agent", "--help"],
                        capture_output=True, text=True, encoding="utf-8", check=False)
    assert "in khóa công khai" in vi.stdout, vi.stdout + vi.stderr

    # 4. Once more: nothing changes.
    before = sorted(str(p.relative_to(root)) for p in (opt, etc, state) for p in p.rglob("*"))
    fourth = _run(root, "--bundle", "/bundle", "--no-apt")
    assert fourth.returncode == 0, fourth.stdout + fourth.stderr
    after = sorted(str(p.relative_to(root)) for p in (opt, etc, state) for p in p.rglob("*"))
    assert after == before and skeleton.read_text() == good

    # The unit, as systemd in that root would load it (ExecStart path included).
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "tcs-agent.service"],
        capture_output=True, text=True, check=False,
    )
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr

    # 5. --uninstall keeps the configuration, the data and the user.
    gone = _run(root, "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert not opt.exists() and not unit.exists() and not wants.exists()
    assert not (root / "usr/local/bin/tcs-agent").exists()
    assert skeleton.read_text() == good and key.read_bytes() == identity
    assert _ids(root, "tcs-agent")[0] == uid

    # 6. --purge removes them too.
    purged = _run(root, "--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not etc.exists() and not state.exists()
    assert "tcs-agent:" not in (root / "etc/passwd").read_text()
    assert "tcs-agent:" not in (root / "etc/group").read_text()
