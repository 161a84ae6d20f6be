"""`tcs-agent audio devices`, and the audio output check of `config check`.

The names listed are PortAudio's, the ones `[audio] output` is matched against by
playback/devices.py (exact, else a case-insensitive substring; "default" is
PortAudio's default output). PortAudio is loaded only when asked (it scans every
card on load), and a missing library is a message, not a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import dataclass
from typing import Any

from agent.i18n import _
from playback.devices import DeviceNotFound, find_device


@dataclass(frozen=True)
class Output:
    index: int
    name: str
    channels: int
    rate: float
    default: bool


class NoPortAudio(Exception):
    pass


def _query() -> tuple[list[dict[str, Any]], int | None]:
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise NoPortAudio(_("PortAudio is not available: {reason}").format(reason=exc)) from None
    devices = [dict(d) for d in sd.query_devices()]
    default = sd.default.device[1]
    return devices, (int(default) if default is not None and default >= 0 else None)


def outputs() -> list[Output]:
    devices, default = _query()
    return [
        Output(i, str(d.get("name", "")), int(d.get("max_output_channels", 0)),
               float(d.get("default_samplerate", 0.0)), i == default)
        for i, d in enumerate(devices)
        if int(d.get("max_output_channels", 0)) > 0
    ]


def output_problem(name: str) -> str | None:
    """Why `[audio] output = name` opens nothing now (with the nearest name), or None."""
    if name.strip().lower() == "none":
        return None
    try:
        devices, default = _query()
    except NoPortAudio as exc:
        return str(exc)
    try:
        find_device(name, devices, default_index=default)
    except DeviceNotFound:
        names = [str(d.get("name", "")) for d in devices if int(d.get("max_output_channels", 0))]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
        hint = _(" (nearest: {name!r})").format(name=close[0]) if close else ""
        have = ", ".join(repr(n) for n in names) or _("none")
        return _("no output device matches {name!r}{hint}; have: {have} "
                 "(list them with `tcs-agent audio devices`)").format(
            name=name, hint=hint, have=have)
    return None


def cmd_devices(args: argparse.Namespace) -> int:
    try:
        found = outputs()
    except NoPortAudio as exc:
        print(_("error: {reason}").format(reason=exc), file=sys.stderr)
        return 1
    if not found:
        print(_("no audio output devices (is the sound card connected?)"))
        return 1
    print(_("audio outputs (use a name, or a part of it, as [audio] output):"))
    for o in found:
        mark = "*" if o.default else " "
        print(f"{mark} {o.name}  ({o.channels} ch, {o.rate:g} Hz)")
    print(_("* = the default output (output = \"default\")"))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    audio = sub.add_parser("audio", parents=[common], help=_("sound devices"))
    asub = audio.add_subparsers(dest="audio_command", required=True)
    devices = asub.add_parser("devices", parents=[common],
                              help=_("list the outputs PortAudio sees"))
    devices.set_defaults(func=cmd_devices)
