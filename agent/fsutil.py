"""Atomic, power-cut-safe file replacement on the SD card.

A file is written under a temporary name beside its target, fsynced, renamed over the
target, and then the folder is fsynced: after a power cut a reader finds the old file
or the new one, never half of either (ext4 may otherwise persist the rename before the
data, or lose the rename itself).

playback/ keeps its own `_commit` (playback/decode.py): it does not import agent/, and
its temporary files are written by a decoder process, not from bytes in memory.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename/creation/unlink inside it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path(path: Path) -> Path:
    """Where `atomic_write` stages `path` (a hidden sibling; cleaners may look for it)."""
    return path.with_name(f".{path.name}.tmp")


def atomic_write(path: Path, data: bytes, *, mode: int = 0o666, durable: bool = True) -> None:
    """Replace `path` with `data` so a reader sees the old or the new file, never half.

    `mode` is the new file's permission (before the umask), e.g. 0o600 for a secret, set
    at creation so the secret is never readable by others even briefly. `durable=False`
    skips both fsyncs where losing the last update to a power cut is harmless.
    """
    tmp = tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)
