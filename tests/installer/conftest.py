"""The offline wheel bundle (scripts/build-bundle.sh), built once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.agentproc import REPO


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of wheels: tcs-agent (this tree) and every dependency."""
    out = tmp_path_factory.mktemp("bundle")
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(REPO / "scripts" / "build-bundle.sh"), str(out)], env=env,
                   check=True, capture_output=True, timeout=900)
    return out
