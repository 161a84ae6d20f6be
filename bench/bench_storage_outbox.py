"""Outbox throughput with synchronous=FULL on this disk: puts/s, delete/s,
batched delete_many/s, and the time to reopen (quick_check) the filled file.

    .venv/bin/python bench/bench_storage_outbox.py [--n 500] [--dir DIR]

DIR defaults to a fresh temporary folder (on the disk that holds /tmp); point it
at the SD card on a device to measure what matters there.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from agent.db import open_db
from agent.outbox import Outbox

TOPIC = "tcs/v1/dev/dev-0001/proof"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=500, help="records per phase")
    ap.add_argument("--payload", type=int, default=700, help="payload bytes (a proof JWS)")
    ap.add_argument("--dir", type=Path, default=None, help="folder on the disk to measure")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-storage-", dir=args.dir))
    try:
        path = work / "state.db"
        payload = os.urandom(args.payload)
        with open_db(path) as db:
            out = Outbox(db, quota_bytes=256 * 1024 * 1024)
            t0 = time.perf_counter()
            ids = [out.put("proof", TOPIC, payload).id for _ in range(args.n)]
            put_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            for rid in ids:
                out.delete(rid)
            del_s = time.perf_counter() - t0

            ids = [out.put("proof", TOPIC, payload).id for _ in range(args.n)]
            t0 = time.perf_counter()
            for i in range(0, len(ids), 20):
                out.delete_many(ids[i : i + 20])
            batch_s = time.perf_counter() - t0

            for _ in range(args.n * 4):
                out.put("proof", TOPIC, payload)
            filled = out.size_bytes()
        t0 = time.perf_counter()
        with open_db(path):
            pass
        open_s = time.perf_counter() - t0

        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cpu, Python {sys.version.split()[0]}"
        )
        print(f"disk: {work}")
        print(
            f"put (synchronous=FULL, {args.payload} B): {args.n / put_s:8.0f} /s"
            f"  ({put_s / args.n * 1000:.2f} ms each)"
        )
        print(
            f"delete one by one:            {args.n / del_s:8.0f} /s"
            f"  ({del_s / args.n * 1000:.2f} ms each)"
        )
        print(f"delete_many in batches of 20: {args.n / batch_s:8.0f} records/s")
        print(f"reopen with quick_check, {filled / 1e6:.1f} MB queued: {open_s * 1000:.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
