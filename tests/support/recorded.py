"""A sound agent online while the null sink is recorded, and waits on what is heard.

Use: `with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):`, then
`jti = send_accepted(province, "alert.start", {...}, timeout=30)` and
`heard = wait_audible(rec)`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support.agentproc import AgentProc, Province
from support.playout import DEVICE, sound_agent, wait_online
from support.pulse import PulseRig, Recorder


@contextmanager
def recorded_agent(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> Iterator[tuple[AgentProc, Province, Recorder]]:
    """Record the sink from before the agent starts (nothing it plays is missed), run it
    until it is online, and stop the recording after the agent has stopped."""
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    rec = pulse.recorder
    rec.start()
    with agent:
        wait_online(province)
        yield agent, province, rec
    rec.stop()


def send_accepted(province: Province, cmd: str, args: dict[str, Any], timeout: float) -> str:
    """Send a long-running `cmd` to the device; its jti once the `accepted` ack is in."""
    jti = province.send(DEVICE, cmd, args)
    province.wait_ack(jti, status="accepted", timeout=timeout)
    return jti


def wait_audible(rec: Recorder, after: float | None = None, timeout: float = 30) -> float:
    """Wall time of the first sound (above -45 dBFS) at the sink, waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        heard = rec.first_audible(-45, after=after)
        if heard is not None:
            return heard
        time.sleep(0.05)
    raise AssertionError("nothing was heard at the null sink")
