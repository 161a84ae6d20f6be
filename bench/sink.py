"""A private PulseAudio null sink for the sound benchmarks (tests/support/pulse.py).

The benches import it as `sink`, after putting tests/ on sys.path.
"""

from __future__ import annotations

import os
from pathlib import Path

from support.pulse import PulseServer


def start_private_sink(runtime: Path) -> PulseServer:
    """Start a null sink whose daemon lives in `runtime`, and point this process's
    environment at it, so PortAudio here and every child (agents, players) play into
    it rather than into a real card. The caller must `kill()` it."""
    runtime.mkdir(parents=True, exist_ok=True)
    server = PulseServer(runtime)
    for key in ("XDG_RUNTIME_DIR", "PULSE_CLIENTCONFIG"):
        os.environ[key] = server.env[key]
    os.environ.pop("PULSE_SERVER", None)  # would take precedence over the runtime dir
    server.start()
    return server
