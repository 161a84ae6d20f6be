"""Finding the output device by name (pure over a device list).

USB sound cards renumber across reboots and re-plugs, so ALSA card numbers and
PortAudio indices are never stored: the configured name is matched, case-insensitively
as a substring, against the device list read fresh each time the output is opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class DeviceNotFound(LookupError):
    """The configured output name matches no current device."""


def find_device(
    name: str,
    devices: Sequence[Mapping[str, Any]],
    *,
    default_index: int | None,
    kind: str = "output",
) -> tuple[int, str]:
    """Index and full name of the device matching `name` among PortAudio `devices`.

    `name` "default" means PortAudio's default device (`default_index`). An exact
    (case-insensitive) name wins over substring matches; among substring matches the
    first in list order wins, which is stable for a given set of cards.
    """
    channels_key = "max_output_channels" if kind == "output" else "max_input_channels"
    usable = [
        (i, str(d.get("name", "")))
        for i, d in enumerate(devices)
        if int(d.get(channels_key, 0)) > 0
    ]
    wanted = name.strip().lower()
    if not wanted:
        raise DeviceNotFound(f"empty {kind} device name")
    if wanted == "default":
        for i, dev_name in usable:
            if i == default_index:
                return i, dev_name
        raise DeviceNotFound(f"no default {kind} device")
    for i, dev_name in usable:
        if dev_name.lower() == wanted:
            return i, dev_name
    for i, dev_name in usable:
        if wanted in dev_name.lower():
            return i, dev_name
    names = ", ".join(repr(n) for _, n in usable) or "none"
    raise DeviceNotFound(f"no {kind} device matches {name!r} (have: {names})")
