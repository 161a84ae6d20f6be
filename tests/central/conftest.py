"""The `console` fixture: a tcs-central set up against the `broker` fixture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.central import Console, make_console


@pytest.fixture
def console(broker: Any, tmp_path: Path) -> Console:
    return make_console(broker, tmp_path / "central")
