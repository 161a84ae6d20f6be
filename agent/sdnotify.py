"""systemd notification (Type=notify, WatchdogSec) without a dependency.

The protocol is one datagram to $NOTIFY_SOCKET. Without systemd the variable is
unset and every call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket


def notify(message: str) -> bool:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), path)
        except OSError:
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


async def watchdog_loop() -> None:
    """Ping the watchdog from the event loop: a frozen loop stops the pings and
    systemd restarts us (a stuck agent is worse than a restarted one)."""
    interval = watchdog_interval()
    if interval is None:
        await asyncio.Event().wait()  # nothing to do; park forever
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
