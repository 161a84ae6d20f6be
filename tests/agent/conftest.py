"""Agent tests: the PulseAudio rig and the agent's steppable wall clock, as fixtures."""

from __future__ import annotations

from support.agentclock import agent_clock  # noqa: F401  (re-exported fixture)
from support.pulse import pulse  # noqa: F401  (re-exported fixture)
