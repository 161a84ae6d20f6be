"""Active alerts (§5.3): the prepared programme, its lifetime and its second ack.

An alert is built once (chime + message × repeat with gaps, one gapless programme,
see playback/alert.py) and handed to the runner, which plays it by priority. Its
`result` future is the `alert.start` second ack: `done` when it played out or was
stopped, `failed` when it could not sound.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from agent.dispatch import Result
from agent.model import AlertStart
from agent.playout.output import Media, Playback
from agent.scheduler import source_key


@dataclass
class ActiveAlert:
    args: AlertStart
    programme: Media  # built by this loop's output (`Output.prepare_alert`)
    shas: tuple[str, ...]
    since: datetime
    result: asyncio.Future[Result] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    segments: int = 0  # how many times it began sounding (pre-emption restarts it)
    end_reason: str | None = None
    until_task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return source_key("alert", self.args.alert_id)


def finish(alert: ActiveAlert, outcome: str, reason: str | None) -> None:
    """Resolve the alert's second ack from how it ended (idempotent)."""
    if alert.until_task is not None and alert.until_task is not asyncio.current_task():
        alert.until_task.cancel()
    if alert.result.done():
        return
    if outcome in ("completed", "resumed"):
        alert.result.set_result(Result(ok=True, detail=f"played {alert.args.repeat}×"))
    elif outcome == "cancelled":
        alert.result.set_result(Result(ok=True, detail=f"stopped ({reason or 'alert.stop'})"))
    else:
        alert.result.set_result(
            Result(ok=False, code=reason or "output_unavailable", detail="alert could not sound")
        )


@dataclass
class ActiveTest:
    """A `test.run` queued on one output's loop; `result` resolves with its Playback."""

    test_id: str
    media: Media
    since: datetime
    result: asyncio.Future[Playback] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
