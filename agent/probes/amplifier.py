"""Amplifier power state, read back from the relay where the hardware allows.

A USB serial relay board that answers a status query, or the GPIO line's value, says
whether the amplifier really is powered; a relay without read-back reports only what
the agent last asked for (`"commanded"`). Read because a horn that stays silent while
proofs say "completed" is often an amplifier whose relay never closed.
"""

from __future__ import annotations

from typing import Protocol


class ReadBack(Protocol):
    def read_back(self) -> bool | None: ...


def amplifier_state(amp: object) -> dict[str, object] | None:
    """`{"on": bool, "read_back": bool}` or None when the state cannot be told."""
    reader = getattr(amp, "read_back", None)
    if callable(reader) and getattr(amp, "can_read_back", True):
        try:
            value = reader()
        except Exception:  # a relay that fails its query is "unknown", never a guess
            return None
        if isinstance(value, bool):
            return {"on": value, "read_back": True}
        return None
    is_on = getattr(amp, "is_on", None)
    return {"on": is_on, "read_back": False} if isinstance(is_on, bool) else None
