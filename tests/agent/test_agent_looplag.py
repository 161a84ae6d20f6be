"""The loop-lag probe raises an event when the event loop is blocked past 100 ms
again and again (its p99), not for one busy moment."""

from __future__ import annotations

import asyncio
import time

from support.timing import until

from agent.looplag import LoopLag


def test_agent_looplag_blocked_loop_raises_event() -> None:
    events: list[tuple[str, str, str]] = []

    async def main() -> None:
        lag = LoopLag(lambda *e: events.append(e), window=20, check_every=20)
        task = asyncio.get_running_loop().create_task(lag.run())
        await until(lambda: len(lag.samples) >= 20, "a full window")
        time.sleep(0.25)  # blocking work on the loop: what the probe exists to catch
        await until(lambda: len(lag.samples) >= 2, "probe turned")
        time.sleep(0.25)
        await until(lambda: events, "loop_lag event")
        task.cancel()
        p99 = lag.p99_ms()
        assert p99 is not None and p99 > 100

    asyncio.run(main())
    (level, code, detail) = events[-1]
    assert (level, code) == ("warning", "loop_lag") and "p99" in detail
