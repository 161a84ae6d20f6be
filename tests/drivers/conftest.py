"""Driver tests: the fake `cec-client` (tests/support/cec.py) as a fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cec import install_fake_cec


@pytest.fixture
def cec_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return install_fake_cec(tmp_path, monkeypatch)
