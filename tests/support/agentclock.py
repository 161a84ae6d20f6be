"""The wall clock of an agent's process tree, stepped like NTP (tests/support/clockshift).

Use the `agent_clock` fixture (import it into the test module): agents started after it
see `time.time()` + the offset; the test process, the recorder and the broker keep the
real clock. CLOCK_MONOTONIC is untouched, exactly as with a real clock step.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

CLOCKSHIFT = Path(__file__).resolve().parent / "clockshift"


class AgentClock:
    """Steps the wall clock of the agent's process tree (and only of it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0

    def now(self) -> float:
        """The agent's wall clock, as it reads it."""
        return time.time() + self.offset

    def set(self, offset_s: float) -> None:
        self.offset = offset_s
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(repr(self.offset))
        os.replace(tmp, self.path)  # atomic: a reader never sees half a number
        time.sleep(0.1)  # > the 50 ms re-read interval: every process has seen it

    def step(self, delta_s: float) -> None:
        self.set(self.offset + delta_s)


@pytest.fixture
def agent_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentClock:
    path = tmp_path / "clock-offset"
    path.write_text("0.0")
    pp = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(CLOCKSHIFT), pp) if p))
    monkeypatch.setenv("TCS_TEST_CLOCK_OFFSET_FILE", str(path))
    return AgentClock(path)
