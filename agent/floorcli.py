"""`tcs-agent clock lower-floor`: lower the time floor with a province-signed token.

The floor (agent/timefloor.py) only moves up by itself. If it ever got ahead of the
real time (a trusted clock spoofed into the future), every command would be judged
`expired` whenever the clock is untrusted. The fix must not be a way around the
floor, so it takes a token signed like a command (PROTOCOL §3), with `cmd` =
`clock.lower_floor`, `aud` = this device, `args` = `{"floor": <Unix seconds>}`, by a
trust key whose `commands` globs match `clock.lower_floor` and whose `max_priority`
is >= 90. Its `jti` is remembered like a command's, so it works once. It is applied
on the device by a technician, with the agent stopped (the running agent keeps the
floor in memory and would write its own value back).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from agent.i18n import M, Msg, _

LOWER_FLOOR_CMD = "clock.lower_floor"
MIN_PRIORITY = 90
MAX_TIME = 2**53


class FloorTokenError(ValueError):
    """Why a token cannot lower the floor: English `str()`, `msg.local()` for a person."""

    def __init__(self, msg: Msg) -> None:
        super().__init__(msg.en())
        self.msg = msg


def check_token(claims: dict[str, Any], *, commands: tuple[str, ...], max_priority: int,
                current: float) -> int:
    """The floor a verified token asks for, or FloorTokenError saying why not (pure)."""
    if claims.get("cmd") != LOWER_FLOOR_CMD:
        raise FloorTokenError(M("cmd is not {cmd!r}", cmd=LOWER_FLOOR_CMD))
    if not any(fnmatchcase(LOWER_FLOOR_CMD, g) for g in commands):
        raise FloorTokenError(M("the signing key may not issue {cmd}", cmd=LOWER_FLOOR_CMD))
    if max_priority < MIN_PRIORITY:
        raise FloorTokenError(
            M("the signing key's max_priority is below {n}", n=MIN_PRIORITY))
    args = claims.get("args")
    floor = args.get("floor") if isinstance(args, dict) else None
    if isinstance(floor, bool) or not isinstance(floor, int) or not 0 <= floor <= MAX_TIME:
        raise FloorTokenError(M("args.floor must be Unix seconds (an integer)"))
    if floor >= current:
        raise FloorTokenError(M("args.floor {floor} is not below the floor ({current})",
                                      floor=floor, current=int(current)))
    if claims["exp"] < floor:
        raise FloorTokenError(M("the token expired before the floor it sets"))
    return floor


def cmd_lower_floor(args: argparse.Namespace) -> int:
    from agent.cli import _load
    from agent.db import open_db
    from agent.protocol import Rejection, VerifyContext, verify_signed
    from agent.replay import ReplayStore
    from agent.state import StateStore
    from agent.timefloor import TimeFloor

    cfg = _load(args.config)
    if cfg is None:
        return 2
    payload = args.token.strip().encode()
    ctx = VerifyContext(device_id=cfg.device.id, groups=frozenset(),
                        trust={k.kid: k for k in cfg.trust})  # fmt: skip
    res = verify_signed(payload, f"tcs/v1/dev/{cfg.device.id}/cmd", ctx)
    if isinstance(res, Rejection):
        print(_("token refused ({code}): {detail}").format(code=res.code, detail=res.detail),
              file=sys.stderr)
        return 1
    claims, key = res
    db = open_db(cfg.storage.dir / "state.db")
    try:
        floor, replay = TimeFloor(StateStore(db)), ReplayStore(db)
        try:
            value = check_token(claims, commands=tuple(key.commands),
                                max_priority=key.max_priority, current=floor.value())
        except FloorTokenError as exc:
            print(_("token refused: {reason}").format(reason=exc.msg.local()), file=sys.stderr)
            return 1
        if replay.seen(claims["jti"]) is not None:
            print(_("token refused: its jti was already used"), file=sys.stderr)
            return 1
        replay.remember(claims["jti"], hashlib.sha256(payload).hexdigest(), claims["exp"])
        before = floor.value()
        floor.lower_to(value)
    finally:
        db.close()
    print(_("time floor lowered from {before} to {value}").format(before=int(before),
                                                                   value=value))
    return 0


def add_subparsers(sub: Any, common: Any) -> None:
    lower = sub.add_parser(
        "lower-floor", help=_("lower the time floor with a signed token"), parents=[common]
    )
    lower.add_argument("-c", "--config", type=Path, required=True)
    lower.add_argument("token", help=_("compact JWS: cmd clock.lower_floor, args.floor"))
    lower.set_defaults(func=cmd_lower_floor)
