"""Throughput of command verification (PROTOCOL §3) plus the dispatch decision.

Run:  .venv/bin/python bench/bench_protocol_verify.py

For a typical alert.start and a 50-item schedule.set it prints commands/s for the
whole verify_command path (framing, JSON, Ed25519, audience, expiry, replay lookup,
key scope, args validation) followed by the decision a dispatcher makes on the
outcome, and the share of that time spent in the signature check alone.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.protocol import DEVICE, NOW, VALID_ARGS, Signer, audio_item, make_ctx

from agent.commands import LONG_RUNNING, validate_args
from agent.jws import b64url_decode, verify_ed25519
from agent.protocol import (
    Command,
    Duplicate,
    Outcome,
    Rejection,
    VerifyContext,
    verify_command,
)

TOPIC = f"tcs/v1/dev/{DEVICE}/cmd"


def decide(out: Outcome) -> tuple[str, bool]:
    """What a dispatcher does first: the ack status and whether a second ack follows."""
    if isinstance(out, Command):
        return "accepted", out.cmd in LONG_RUNNING
    if isinstance(out, Duplicate):
        return "duplicate", False
    assert isinstance(out, Rejection)
    return "rejected", False


def rate(fn: Callable[[], Any], seconds: float = 1.0) -> float:
    """Calls per second of fn, measured for about `seconds` after a short warm-up."""
    for _ in range(20):
        fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        n += 20
    return n / elapsed


def measure(name: str, payload: bytes, raw_args: dict[str, Any], ctx: VerifyContext,
            key: bytes) -> None:
    store: dict[str, str] = {}

    def full() -> None:
        out = verify_command(payload, TOPIC, ctx, now=NOW, clock_trusted=True,
                             time_lower_bound=0.0, seen_jti=store.get)
        status, _ = decide(out)
        assert status == "accepted", out

    h, p, s = payload.split(b".")
    signing_input, sig = h + b"." + p, b64url_decode(s)
    cmd = name.split()[0]
    per_s = rate(full)
    sig_s = rate(lambda: verify_ed25519(key, signing_input, sig))
    args_s = rate(lambda: validate_args(cmd, raw_args))
    print(f"{name:24s} {len(payload):6d} B  verify+decide {per_s:8.0f} cmd/s "
          f"({1e6 / per_s:7.1f} us)  signature alone {1e6 / sig_s:6.1f} us  "
          f"args alone {1e6 / args_s:7.1f} us")


def main() -> None:
    signer = Signer.new("vn-48-emergency")
    ctx = make_ctx([signer.trust_key()])
    key = signer.trust_key().public_key
    schedule = {"version": 7, "items": [audio_item(f"item-{i:02d}", priority=10 + i % 30)
                                        for i in range(50)]}
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    measure("alert.start", signer.token("alert.start", VALID_ARGS["alert.start"]),
            VALID_ARGS["alert.start"], ctx, key)
    measure("schedule.set (50 items)", signer.token("schedule.set", schedule), schedule, ctx, key)


if __name__ == "__main__":
    main()
