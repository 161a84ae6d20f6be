"""Child process for the kill -9 tests: writes to state.db and reports each
operation on stdout only after the call returned (so the parent knows which
writes the storage promised to keep).

    python storage_child.py outbox DB START   # burst of puts (+ some deletes) from seq START
    python storage_child.py inbox DB TOPIC PAYLOAD_HEX   # one put, then wait to be killed
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from agent.db import open_db
from agent.inbox import Inbox
from agent.outbox import Outbox

KINDS = ("ack", "event", "proof", "other")


def payload_for(seq: int) -> bytes:
    """Deterministic payload whose integrity the parent can check."""
    pad = hashlib.sha256(str(seq).encode()).hexdigest() * (1 + seq % 7)
    body = json.dumps({"seq": seq, "pad": pad}).encode()
    return body + b"|" + hashlib.sha256(body).hexdigest().encode()


def run_outbox(db_path: Path, start: int) -> None:
    db = open_db(db_path)
    out = Outbox(db, quota_bytes=64 * 1024 * 1024)
    seq = start
    while True:
        res = out.put(KINDS[seq % 4], f"tcs/v1/dev/dev-0001/{KINDS[seq % 4]}", payload_for(seq))
        print(f"P {res.id} {seq}", flush=True)
        if seq % 5 == 0:
            # What a publisher does after PUBACK.
            out.delete(res.id)
            print(f"D {res.id} {seq}", flush=True)
        seq += 1


def run_inbox(db_path: Path, topic: str, payload: bytes) -> None:
    db = open_db(db_path)
    entry_id = Inbox(db).put(topic, payload)
    print(f"I {entry_id}", flush=True)
    time.sleep(60)  # the parent kills us long before this


def main(argv: list[str]) -> None:
    mode, db_path = argv[1], Path(argv[2])
    if mode == "outbox":
        run_outbox(db_path, int(argv[3]))
    elif mode == "inbox":
        run_inbox(db_path, argv[3], bytes.fromhex(argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv)
