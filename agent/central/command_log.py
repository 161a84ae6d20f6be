"""The record of every command `tcs-central send` signed: who, what, to whom, when.

Written before the command is published, so nothing the province ordered is
missing from the database even if the broker is down; reports read it back to
know what each device should have played (agent/central/expected.py).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from agent.central import schema
from agent.central.sign import decode_unverified
from agent.central.store import insert_ignore


@dataclass(frozen=True)
class SentCommand:
    jti: str
    issued_ms: int
    expires_ms: int
    operator: str
    issuer: str
    kid: str
    cmd: str
    target_kind: str
    target: str
    args: dict[str, Any]
    tamper: str | None = None


def from_token(token: str, target_kind: str, target: str, tamper: str | None,
               operator: str | None = None) -> SentCommand:
    """What to record for a signed token (read back from the token itself)."""
    header, claims, _ = decode_unverified(token)
    args = claims.get("args")
    return SentCommand(
        jti=str(claims["jti"]), issued_ms=int(claims["iat"]) * 1000,
        expires_ms=int(claims["exp"]) * 1000, operator=(operator or _operator())[:64],
        issuer=str(claims.get("iss"))[:64], kid=str(header.get("kid"))[:64],
        cmd=str(claims.get("cmd"))[:32], target_kind=target_kind, target=target,
        args=args if isinstance(args, dict) else {}, tamper=tamper,
    )


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def record(engine: Engine, sent: SentCommand) -> None:
    with engine.begin() as conn:
        insert_ignore(conn, schema.commands, [{
            "jti": sent.jti, "issued_ms": sent.issued_ms, "expires_ms": sent.expires_ms,
            "operator": sent.operator, "issuer": sent.issuer, "kid": sent.kid, "cmd": sent.cmd,
            "target_kind": sent.target_kind, "target": sent.target,
            "args": json.dumps(sent.args, ensure_ascii=False, sort_keys=True),
            "tamper": sent.tamper,
        }])


def load(engine: Engine, cmds: tuple[str, ...], until_ms: int) -> list[SentCommand]:
    """Untampered commands named in `cmds` issued before `until_ms`, oldest first."""
    c = schema.commands.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.jti, c.issued_ms, c.expires_ms, c.operator, c.issuer, c.kid, c.cmd,
                   c.target_kind, c.target, c.args)
            .where(c.cmd.in_(cmds), c.issued_ms < until_ms, c.tamper.is_(None))
            .order_by(c.issued_ms, c.jti)
        ).all()
    return [SentCommand(r.jti, r.issued_ms, r.expires_ms, r.operator, r.issuer, r.kid, r.cmd,
                        r.target_kind, r.target, json.loads(r.args)) for r in rows]
