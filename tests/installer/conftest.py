"""The offline wheel bundle (scripts/build-bundle.sh) and release bundles (tars) of this
version and of NEXT, built once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.agentproc import REPO
from support.releases import NEXT, tar_of_wheels

from agent import __version__


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of wheels: tcs-agent (this tree) and every dependency."""
    out = tmp_path_factory.mktemp("bundle")
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(REPO / "scripts" / "build-bundle.sh"), str(out)], env=env,
                   check=True, capture_output=True, timeout=900)
    return out


@pytest.fixture(scope="session")
def bundles(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Release bundles (tars) of this version and of NEXT (the same code, renumbered)."""
    work = tmp_path_factory.mktemp("bundles")
    current = tar_of_wheels(bundle, work / "current.tar")
    src = work / "src"
    for name in ("agent", "drivers", "playback", "display", "pyproject.toml", "README.md"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, src / name)
    renumber = ((src / "pyproject.toml", f'version = "{__version__}"', f'version = "{NEXT}"'),
                (src / "agent" / "__init__.py", f'"{__version__}"', f'"{NEXT}"'))
    for path, old, new in renumber:
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    wheels = work / "next"
    shutil.copytree(bundle, wheels)
    for old_wheel in wheels.glob("tcs_agent-*.whl"):
        old_wheel.unlink()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(src)], check=True, capture_output=True, timeout=600)
    return current, tar_of_wheels(wheels, work / "next.tar")
