"""`tcs-agent clock lower-floor`: only a province token scoped to it lowers the time
floor, once; everything else is refused and leaves the floor where it was."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from support.agentproc import TrustKey, agent_config, run_cli

from agent import jws
from agent.db import open_db
from agent.state import StateStore
from agent.timefloor import FLOOR_KEY

HIGH = 1_900_000_000  # a floor pushed years ahead by a clock spoofed into the future


def token(key: TrustKey, floor: int, *, aud: str = "dev-0001", jti: str | None = None,
          cmd: str = "clock.lower_floor") -> str:
    claims = {"iss": "vn-48", "aud": aud, "jti": jti or uuid.uuid4().hex, "iat": floor,
              "exp": floor + 3600, "cmd": cmd, "args": {"floor": floor}}  # fmt: skip
    return jws.sign_compact(key.key, {"alg": "EdDSA", "typ": "JWT", "kid": key.kid}, claims)


def floor_of(cfg: Path) -> float:
    db = open_db(cfg.parent / "state" / "state.db")
    try:
        return float(StateStore(db).get(FLOOR_KEY, 0))
    finally:
        db.close()


def test_lower_floor_takes_a_scoped_province_token_once(tmp_path: Path, broker: Any) -> None:
    province = TrustKey("vn-48-emergency")
    commune = TrustKey("commune", commands=("schedule.set", "clock.lower_floor"),
                       max_priority=49)  # fmt: skip
    narrow = TrustKey("vn-48-clock", commands=("clock.lower_floor",), max_priority=100)
    cfg = agent_config(tmp_path, broker, "dev-0001", ["vn-48"], [province, commune, narrow])
    assert run_cli("enroll", "-c", str(cfg)).returncode == 0
    (tmp_path / "state").mkdir(exist_ok=True)
    db = open_db(tmp_path / "state" / "state.db")
    StateStore(db).set(FLOOR_KEY, HIGH)
    db.close()

    def lower(tok: str) -> Any:
        return run_cli("clock", "lower-floor", "-c", str(cfg), tok)

    refused = [
        lower(token(commune, 1_795_000_000)),  # below priority 90
        lower(token(province, 1_795_000_000, aud="dev-0002")),  # another device
        lower(token(province, 1_795_000_000, cmd="volume.set")),  # not this token
        lower(token(province, HIGH + 10)),  # not lower
        lower(token(TrustKey("vn-48-emergency"), 1_795_000_000)),  # forged
    ]
    for out in refused:
        assert out.returncode == 1 and "refused" in out.stderr, out
    assert floor_of(cfg) == HIGH

    good = token(narrow, 1_795_000_000, jti="floor-1")
    out = lower(good)
    assert out.returncode == 0, out.stderr
    assert f"from {HIGH} to 1795000000" in out.stdout
    assert floor_of(cfg) == 1_795_000_000
    # Once only: the same token, or another with its jti, is refused.
    again = lower(token(narrow, 1_794_000_000, jti="floor-1"))
    assert again.returncode == 1 and "already used" in again.stderr
    assert floor_of(cfg) == 1_795_000_000
