"""What a broker host name says about the link: plain `mqtt://` is allowed only to a host
on this machine, where nothing on the network can read or alter it."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback addresses (127.0.0.0/8, ::1); no DNS lookup."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
