"""What each device should have played, from the `schedule.set` commands the console
signed, computed with the agent's own scheduler code (agent/scheduler/). Pure.

A device replaces its schedule only with a higher `version` (PROTOCOL §4), so the
schedule in effect from a command's `iat` is that command's if its version is
higher than the one in effect before. Occurrences are those of the items in
effect, in the province's zone, from the moment the command was signed. A
quiet-hours occurrence is still expected: the device answers it with a `skipped`
proof, and that proof is what accounts for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from agent.central.acl import DeviceEntry
from agent.central.command_log import SentCommand
from agent.commands import ArgsError, validate_args
from agent.model import ScheduleSet
from agent.scheduler import occurrences


class Expected(NamedTuple):  # a tuple: a province-month is ~300,000 of them
    device: str
    item_id: str
    at_ms: int
    window_s: int


def _schedule(cmd: SentCommand) -> ScheduleSet | None:
    try:
        parsed = validate_args("schedule.set", cmd.args)
    except (ArgsError, ValueError):
        return None  # the device rejects it (bad_args): nothing becomes expected
    return parsed if isinstance(parsed, ScheduleSet) else None


def audience(cmd: SentCommand, devices: Sequence[DeviceEntry]) -> list[str]:
    if cmd.target_kind == "device":
        return [cmd.target]
    return [d.id for d in devices if cmd.target in d.groups]


def expected_occurrences(commands: Iterable[SentCommand], devices: Sequence[DeviceEntry],
                         tz: ZoneInfo, start_ms: int, end_ms: int,
                         refused: frozenset[tuple[str, str]] = frozenset()) -> list[Expected]:
    """Every occurrence in [start_ms, end_ms) each device should have answered.

    `refused` holds (device, jti) of schedules a device acked `rejected` or `stale`:
    that device kept its previous schedule.
    """
    per_device: dict[str, list[tuple[SentCommand, ScheduleSet]]] = {}
    for cmd in commands:
        if cmd.cmd != "schedule.set":
            continue
        sched = _schedule(cmd)
        if sched is None:
            continue
        for device in audience(cmd, devices):
            if (device, cmd.jti) in refused:
                continue
            per_device.setdefault(device, []).append((cmd, sched))
    cache: dict[tuple[str, int, int], list[tuple[str, int, int]]] = {}
    out: list[Expected] = []
    for device in sorted(per_device):
        in_effect: list[tuple[SentCommand, ScheduleSet]] = []
        for cmd, sched in sorted(per_device[device], key=lambda cs: cs[0].issued_ms):
            if not in_effect or sched.version > in_effect[-1][1].version:
                in_effect.append((cmd, sched))
        for i, (cmd, sched) in enumerate(in_effect):
            lo = max(start_ms, cmd.issued_ms)
            hi = min(end_ms, in_effect[i + 1][0].issued_ms if i + 1 < len(in_effect) else end_ms)
            if lo >= hi:
                continue
            key = (cmd.jti, lo, hi)
            if key not in cache:
                cache[key] = _occurrences(sched, tz, lo, hi)
            out.extend(Expected(device, item, at, window) for item, at, window in cache[key])
    return out


def _occurrences(sched: ScheduleSet, tz: ZoneInfo, lo: int, hi: int) -> list[tuple[str, int, int]]:
    start = datetime.fromtimestamp(lo / 1000, UTC)
    end = datetime.fromtimestamp(hi / 1000, UTC)
    found = []
    for item in sched.items:
        for occ in occurrences(item, tz, start, end):
            found.append((item.id, int(occ.at.timestamp() * 1000), item.window_s))
    return found
