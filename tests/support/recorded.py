"""A sound agent online while the null sink is recorded, and waits on what is heard.

Use: `with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):`, then
`jti = send_accepted(province, "alert.start", {...}, timeout=30)` and
`heard = wait_audible(rec)`, or `jti = start_long_alert(province, rec, "fire-1")`;
`wait_sounded(rec, 3.0, after=heard)` instead of "sleep 3 s while it plays": the wait
is measured on the sink's own recording, so a loaded machine slows it, never fails it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support.agentproc import AgentProc, Province
from support.playout import DEVICE, audible_spans, recording, sound_agent
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


def sounded_s(rec: Recorder, after: float, min_gap_s: float = 0.3) -> float:
    """Seconds of sound (above -45 dBFS, gaps under `min_gap_s` bridged) the sink has
    recorded since wall time `after`."""
    x = rec.samples[max(0, rec.index_of(after)) :]
    return sum(e - s for s, e in audible_spans(x, min_gap_s=min_gap_s))


def wait_sounded(rec: Recorder, seconds: float, after: float, timeout: float = 60) -> float:
    """Wall time by which the sink has recorded `seconds` of sound since `after`.

    `timeout` only guards against a hung test (what plays must play that long)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sounded_s(rec, after) >= seconds:
            return time.time()
        time.sleep(0.2)  # each look copies the whole recording: not too often
    raise AssertionError(
        f"the sink recorded {sounded_s(rec, after):.2f} s of sound after {after:.3f}, "
        f"not {seconds:g} s"
    )
