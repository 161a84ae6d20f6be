"""Helpers for the console database tests: signed proofs, a collector process, polling.

    proof = signed_proof(key, "dev-0001", "p-1", outcome="completed", ...)
    with CollectorProc(console.config, db_url) as col:
        col.wait_subscribed()
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.reports import proof_token
from agent.timeutil import rfc3339_ms

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def poll(what: str, get: Callable[[], T], ok: Callable[[T], bool], timeout: float = 30) -> T:
    """Call `get` until `ok(value)`; AssertionError naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout} s")
        time.sleep(0.05)


def proof_record(proof_id: str, *, kind: str = "audio", subject: str = "morning",
                 outcome: str = "completed", scheduled: datetime | None = None,
                 start_delay_s: float = 0.0, played_s: float = 60.0,
                 reason: str | None = None) -> dict[str, Any]:
    """A §6.4 record; `scheduled` aware. Nothing sounded for skipped (times null)."""
    field = {"audio": "item_id", "slides": "item_id", "alert": "alert_id",
             "live": "session_id"}[kind]
    sounded = outcome not in ("skipped",) and played_s > 0
    started = (scheduled + timedelta(seconds=start_delay_s)) if scheduled and sounded else None
    return {
        "id": proof_id, field: subject, "kind": kind, "media_sha256": ["ab" * 32],
        "scheduled_at": None if scheduled is None or kind == "alert" else rfc3339_ms(scheduled),
        "started_at": None if started is None else rfc3339_ms(started),
        "ended_at": None if started is None else rfc3339_ms(started + timedelta(
            seconds=played_s)),
        "played_ms": int(played_s * 1000) if sounded else 0,
        "outcome": outcome, "reason": reason, "volume": 80, "level_dbfs": -20.0,
    }


def alert_record(proof_id: str, alert_id: str, started: datetime,
                 played_s: float = 20.0, outcome: str = "completed") -> dict[str, Any]:
    rec = proof_record(proof_id, kind="alert", subject=alert_id, outcome=outcome,
                       played_s=played_s, scheduled=started)
    rec["scheduled_at"] = None
    return rec


def signed_proof(key: Ed25519PrivateKey, device: str, record: dict[str, Any]) -> bytes:
    return proof_token(key, device, record)


class CollectorProc:
    """`tcs-central collect` as a real process (so it can be killed with SIGKILL)."""

    def __init__(self, config: Path, db_url: str) -> None:
        self.config = config
        self.db_url = db_url
        self.log = config.parent / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self) -> CollectorProc:
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent.central.cli", "-c", str(self.config), "collect",
                 "--db", self.db_url],
                stdout=logf, stderr=subprocess.STDOUT, cwd=REPO,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_subscribed(self, timeout: float = 30) -> None:
        poll("collector subscribed", lambda: self.output()[self._offset:],
             lambda text: "collecting from" in text or self.proc is None
             or self.proc.poll() is not None, timeout)
        assert self.proc is not None and self.proc.poll() is None, self.output()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> CollectorProc:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
