"""A small real file system a test can fill up or remount read-only (tests run as root).

    with tmpfs(tmp_path / "state", size="8m") as mnt:
        fill(mnt)                  # until ENOSPC; returns the filler file
        remount(mnt, ro=True)
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(mnt: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a tmpfs of `size` on `mnt` (created); skip the test where that cannot be done."""
    mnt.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
        capture_output=True,
        timeout=10,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], timeout=10, check=False)


def remount(mnt: Path, *, ro: bool) -> None:
    subprocess.run(
        ["mount", "-o", f"remount,{'ro' if ro else 'rw'}", str(mnt)], check=True, timeout=10
    )


def fill(mnt: Path, name: str = "filler") -> Path:
    """Write a file into `mnt` until the file system is full; returns it."""
    path = mnt / name
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        # The last partial chunk: fill to the very last byte.
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)
    return path
