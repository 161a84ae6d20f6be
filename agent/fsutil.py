"""Atomic, power-cut-safe file replacement on the SD card.

A file is written under a temporary name beside its target, fsynced, renamed over the
target, and then the folder is fsynced: after a power cut a reader finds the old file
or the new one, never half of either (ext4 may otherwise persist the rename before the
data, or lose the rename itself).

playback/ keeps its own `_commit` (playback/decode.py): it does not import agent/, and
its temporary files are written by a decoder process, not from bytes in memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


# O_EXCL: never write into a file that already exists (another writer's, or a planted
# one whose mode we would not set); O_NOFOLLOW: never write through a symlink planted
# at the temporary name into a file elsewhere (e.g. a key, or /etc/...).
_EXCL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


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
    try:
        fd = os.open(tmp, _EXCL_FLAGS, mode)
    except FileExistsError:
        # Left by a crash mid-write, or planted: unlink removes the name itself (a
        # symlink is not followed), then the file is created afresh, ours alone.
        tmp.unlink()
        fd = os.open(tmp, _EXCL_FLAGS, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def read_only_medium(path: Path) -> bool:
    """Whether the file system holding `path` (or its nearest existing ancestor) is
    mounted read-only (e.g. an SD card the kernel remounted after I/O errors)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def scratch_dir(path: Path, *, force_ram: bool = False) -> Path:
    """`path` (created) when it can be written, else (or with `force_ram`) a private
    folder in RAM named like it.

    For regenerable files (decoded PCM, speech): on a read-only or unwritable state
    folder the agent must still be able to speak an alert. The RAM folder is
    `/dev/shm/tcs-agent-<uid>/<name>` (or under the temp dir without /dev/shm), reused
    across restarts so it stays bounded; it must be a real folder owned by us with no
    access for others, since /dev/shm is writable by everyone.
    """
    reason = "storage unwritable"
    try:
        if force_ram:
            raise OSError(0, reason)
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        probe.unlink()
        return path
    except OSError as exc:
        reason = exc.strerror or str(exc)
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    own = base / f"tcs-agent-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(own, 0o700)
    st = os.lstat(own)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{own} is not a private folder of this user; refusing to use it")
    ram = own / path.name
    with contextlib.suppress(FileExistsError):
        os.mkdir(ram, 0o700)
    if not force_ram:
        log.error("%s is not writable (%s); using %s in RAM instead", path, reason, ram)
    return ram
