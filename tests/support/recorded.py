"""A sound agent online while the null sink is recorded, and waits on what is heard.

Use: `with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):`, then
`jti = send_accepted(province, "alert.start", {...}, timeout=30)` and
`heard = wait_audible(rec)`, or `jti = start_long_alert(province, rec, "fire-1")`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support.agentproc import AgentProc, Province
from support.playout import DEVICE, recording, sound_agent
from support.pulse import PulseRig, Recorder

ALERT_TEXT = "Thông báo khẩn cấp: bão số 9 đổ bộ"


@contextmanager
def recorded_agent(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> Iterator[tuple[AgentProc, Province, Recorder]]:
    """A sound agent, online, with the sink recorded around its whole run (`recording`)."""
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    with recording(agent, province, pulse) as rec:
        yield agent, province, rec


def send_accepted(province: Province, cmd: str, args: dict[str, Any], timeout: float) -> str:
    """Send a long-running `cmd` to the device; its jti once the `accepted` ack is in."""
    jti = province.send(DEVICE, cmd, args)
    province.wait_ack(jti, status="accepted", timeout=timeout)
    return jti


def start_long_alert(
    province: Province, rec: Recorder, alert_id: str, *, timeout: float = 30, **args: Any
) -> str:
    """Start an alert that would sound for about a minute (20 repeats of ALERT_TEXT, 1 s
    apart), for a test to cut short; its jti once it is accepted and heard."""
    jti = send_accepted(
        province, "alert.start",
        {"alert_id": alert_id, "text": ALERT_TEXT, "repeat": 20, "gap_s": 1, **args},
        timeout=timeout,
    )  # fmt: skip
    wait_audible(rec)
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
