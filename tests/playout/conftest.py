"""Playout tests: the private PulseAudio rig and a local tone stream (tests/conftest.py
puts tests/ on sys.path)."""

from __future__ import annotations

from support.agentclock import agent_clock  # noqa: F401  (re-exported fixture)
from support.live_streams import stream  # noqa: F401  (re-exported fixture)
from support.pulse import pulse  # noqa: F401  (re-exported fixture)
