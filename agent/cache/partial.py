"""One download in progress on disk: `.partial/<sha>.part` plus its `<sha>.json`.

Why the sidecar: after `kill -9` the bytes written are in the page cache and
fine, but after a power cut the tail of a file may be garbage. The sidecar
records how many bytes were fsynced (`durable`); a resume cuts the file back to
that and re-downloads at most the bytes written since the last commit (one
commit interval, "one chunk"). The final SHA-256 check catches anything else.

An exclusive `flock` on the .part file keeps a technician's `cache fetch` and
the agent from writing the same partial at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from agent.cache.store import atomic_write, ref_to_json
from agent.model import MediaRef


class PartialBusy(Exception):
    """Another process is downloading the same object right now."""


class PartialFile:
    """Append-only writer with a running SHA-256 and durable commit points."""

    def __init__(self, directory: Path, ref: MediaRef) -> None:
        self.ref = ref
        self.path = directory / f"{ref.sha256}.part"
        self.meta_path = directory / f"{ref.sha256}.json"
        self._fd = -1
        self._hash = hashlib.sha256()
        self.offset = 0
        self.durable = 0
        # commit() runs in a worker thread; close() must not pull the fd from
        # under a running fsync when a download is cancelled.
        self._lock = threading.Lock()

    # Blocking file work: callers run open/commit/finish in a worker thread.

    def open(self) -> int:
        """Open (creating or resuming); return the offset to continue from.

        Raises PartialBusy if another process holds the lock.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PartialBusy(f"{self.ref.sha256} is being downloaded by another process") from None
        self._fd = fd
        durable = self._read_durable()
        size = os.fstat(fd).st_size
        if durable > size or durable > self.ref.size:
            durable = 0
        os.ftruncate(fd, durable)
        self._hash = hashlib.sha256()
        done = 0
        while done < durable:
            block = os.pread(fd, min(1 << 20, durable - done), done)
            if not block:
                break
            self._hash.update(block)
            done += len(block)
        os.lseek(fd, done, os.SEEK_SET)
        self.offset = self.durable = done
        if durable == 0:
            self._write_meta(0)
        return done

    def _read_durable(self) -> int:
        try:
            meta = json.loads(self.meta_path.read_bytes())
        except (OSError, ValueError):
            return 0
        durable = meta.get("durable") if isinstance(meta, dict) else None
        return durable if isinstance(durable, int) and durable >= 0 else 0

    def _write_meta(self, durable: int) -> None:
        data = json.dumps({"ref": ref_to_json(self.ref), "durable": durable}).encode()
        # The data was fsynced before; the sidecar itself needs no fsync: losing
        # it only makes the resume start from an older commit point.
        atomic_write(self.meta_path, data, durable=False)

    def write(self, data: bytes) -> None:
        """Append `data` (page cache only; `commit` makes it durable)."""
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._hash.update(data)
        self.offset += len(data)

    def append(self, chunks: Sequence[bytes], commit_every: int) -> None:
        """Hash and write `chunks`, fsyncing each time `commit_every` bytes pass `durable`.

        Writes are cut exactly at the commit points, so at any instant (a
        `kill -9` or power cut included) at most `commit_every` bytes are
        written but not yet recorded as durable: a resume re-downloads at most
        one chunk. Runs in a worker thread, pipelined with the network reads;
        hashlib, os.write and fsync release the GIL, so it overlaps them on
        another core. Holds the lock so `close()` cannot pull the fd mid-batch.
        """
        if commit_every < 1:
            raise ValueError(f"commit_every must be >= 1, got {commit_every}")
        with self._lock:
            fd = self._fd
            if fd < 0:
                raise OSError(errno.EBADF, f"partial {self.path.name} is closed")
            # One hash call and one write per batch, not per socket read: each
            # call gives the GIL up and must win it back from the event loop,
            # and those hand-overs, not the hashing, were the measured cost.
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._hash.update(data)
            view = memoryview(data)
            while view:
                room = self.durable + commit_every - self.offset
                n = os.write(fd, view[:room])
                view = view[n:]
                self.offset += n
                if self.offset - self.durable >= commit_every:
                    os.fsync(fd)
                    self._write_meta(self.offset)
                    self.durable = self.offset

    def commit(self, upto: int) -> None:
        """fsync, then record that the first `upto` bytes are durable."""
        with self._lock:
            if self._fd < 0:
                return
            os.fsync(self._fd)
            self._write_meta(upto)
            self.durable = upto

    def restart(self) -> None:
        """Throw the bytes away and start again from 0 (server ignored our Range)."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hash = hashlib.sha256()
        self.offset = self.durable = 0
        self._write_meta(0)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)  # also releases the flock
                self._fd = -1

    def discard(self) -> None:
        """Delete the partial and its sidecar (bytes proved wrong)."""
        self.path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)
        self.close()

    def forget_meta(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()
