"""Fault injection for crash tests: make the agent die at an exact point.

A crash between "the broker was told we have the command" and "we acted on it" is
the case the journal exists for, but no outside signal can hit that window
reliably. Named failpoints (as in FoundationDB or TiKV) can:

    TCS_FAILPOINTS=intake.after_journal tcs-agent run -c agent.toml

kills the process with SIGKILL the first time that point is reached. Unset (the
production case) every call is a dictionary lookup that finds nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal


def armed(name: str) -> bool:
    points = os.environ.get("TCS_FAILPOINTS", "")
    return bool(points) and name in points.split(",")


def hit(name: str) -> None:
    if armed(name):
        os.kill(os.getpid(), signal.SIGKILL)


async def hit_after_io(name: str, settle_s: float = 0.3) -> None:
    """Like `hit`, but first lets the event loop flush what was queued for the
    socket (e.g. a PUBACK), so the crash happens *after* the broker heard it."""
    if armed(name):
        await asyncio.sleep(settle_s)
        os.kill(os.getpid(), signal.SIGKILL)
