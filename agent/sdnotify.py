"""systemd notification (Type=notify, WatchdogSec) without a dependency.

The protocol is one datagram to $NOTIFY_SOCKET. Without systemd the variable is
unset and every call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable


def notify(message: str) -> bool:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            # Never wait: a receiver whose queue is full (systemd busy; the kernel queues
            # only max_dgram_qlen = 10 datagrams) must not freeze the event loop.
            sock.sendto(message.encode(), socket.MSG_DONTWAIT, path)
        except OSError:  # BlockingIOError included: this one notification is dropped
            return False
    return True


def watchdog_interval() -> float | None:
    """Half of WATCHDOG_USEC, as systemd recommends; None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None


async def watchdog_loop(healthy: Callable[[], bool] = lambda: True) -> None:
    """Ping the watchdog from the event loop while `healthy()` (the liveness registry:
    every part up). A frozen loop or a dead part stops the pings and systemd restarts
    us (a stuck agent is worse than a restarted one)."""
    interval = watchdog_interval()
    if interval is None:
        await asyncio.Event().wait()  # nothing to do; park forever
        return
    while True:
        if healthy():
            notify("WATCHDOG=1")
        await asyncio.sleep(interval)
