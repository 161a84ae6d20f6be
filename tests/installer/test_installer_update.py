"""Releases side by side (agent/update.py) on the installer's layout, with real venvs
built offline from real bundles: install, switch, roll back, confirm, and the
protocol's version rule; a bundle cannot write outside the staging folder."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from support.agentproc import REPO
from support.releases import NEXT

from agent import __version__
from agent.update import Layout, UpdateRefused, confirm, pending, rollback, update_from_bundle

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

def _running(layout: Layout) -> str:
    out = subprocess.run([str(layout.current / "venv" / "bin" / "tcs-agent"), "--version"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_install_switch_rollback_confirm(tmp_path: Path, bundles: tuple[Path, Path]) -> None:
    layout = Layout(tmp_path / "opt")
    current, nxt = bundles
    assert update_from_bundle(layout, current) == __version__
    confirm(layout)
    assert _running(layout) == f"tcs-agent {__version__}"

    # The newer release goes in beside the running one; the switch is pending.
    assert update_from_bundle(layout, nxt, expected=NEXT) == NEXT
    assert _running(layout) == f"tcs-agent {NEXT}"
    assert pending(layout) == {"version": NEXT, "previous": __version__}
    assert (layout.release(__version__) / ".complete").exists(), "the old release is kept"

    # Not healthy: back to the previous release.
    assert rollback(layout) == __version__
    assert _running(layout) == f"tcs-agent {__version__}" and pending(layout) is None

    # Again, and this time it proves healthy.
    update_from_bundle(layout, nxt)
    assert confirm(layout) == NEXT and pending(layout) is None
    assert layout.installed() == [__version__, NEXT]

    # The protocol's version rule.
    with pytest.raises(UpdateRefused, match="already running"):
        update_from_bundle(layout, nxt)
    with pytest.raises(UpdateRefused, match="below the running"):
        update_from_bundle(layout, current)
    assert update_from_bundle(layout, current, allow_downgrade=True) == __version__
    with pytest.raises(UpdateRefused, match=f"holds {NEXT}, not 1.0"):
        update_from_bundle(layout, nxt, expected="1.0")


@pytest.mark.parametrize("member", ["../evil.whl", "sub/evil.whl", "link.whl", "notes.txt"])
def test_a_bundle_cannot_write_outside_staging(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo(member)
        if member == "link.whl":
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    layout = Layout(tmp_path / "opt")
    with pytest.raises(UpdateRefused, match="unexpected member"):
        update_from_bundle(layout, archive)
    assert not (tmp_path / "evil.whl").exists()
    assert layout.installed() == [] and layout.current_version() is None


def test_technician_command_refuses_with_a_message(tmp_path: Path) -> None:
    archive = tmp_path / "empty.tar"
    with tarfile.open(archive, "w"):
        pass
    out = subprocess.run([sys.executable, "-m", "agent", "update", "install", str(archive),
                          "--prefix", str(tmp_path / "opt")], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=False)
    assert out.returncode == 1
    assert "update refused:" in out.stderr and "0 tcs_agent wheels" in out.stderr
