"""Content-addressed media store on the SD card (PROTOCOL §5.1, cache key = sha256).

Layout under `root` (`<storage.dir>/cache/`):

    ab/abcdef…            a complete, verified object, named by its SHA-256 only (mode 0444)
    .partial/<sha>.part   a download in progress; `<sha>.json` beside it says how many
                          of its bytes are known durable (fsynced) and where it came from
    .quarantine/<sha>.N   objects whose bytes stopped matching their name (kept for a look)
    pins.json             what the schedule / alerts / fallback reference (read by the CLI)

An object only appears under `ab/` by an atomic rename of a file that was hashed,
size-checked and fsynced; the directory is fsynced after the rename. So a power
cut leaves either no object or a whole one, never a partial file taken as cached.

LRU is kept in the objects' mtime (`touch`), which survives restarts without an
index to corrupt and works on `noatime` mounts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.cache.digest import check_sha256, hash_file, is_sha256
from agent.fsutil import atomic_write as atomic_write  # re-exported for agent/cache/partial.py
from agent.fsutil import fsync_dir
from agent.model import MediaRef

EmitEvent = Callable[[str, str, str], None]

PARTIAL_DIR = ".partial"
QUARANTINE_DIR = ".quarantine"
PINS_FILE = "pins.json"
QUARANTINE_KEEP = 4
MiB = 1 << 20
TEMP_STALE_S = 3600.0  # a derived temp file older than this was left by a crash
# The heartbeat's counts may be this old when nothing changed through this cache (a
# change made by another process, e.g. the technician's CLI, shows within it): the
# walk costs ~100 ms of Python per 5,000 objects, and a thread holding the GIL for
# that long makes the event loop's timers late (bench/bench_loop_lag.py).
STATS_MAX_AGE_S = 30.0
SIDECAR_SLACK = 4096  # a partial's metadata file, so the quota holds to the byte


@dataclass(frozen=True)
class CacheStats:
    items: int
    bytes: int


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    size: int
    mtime: float  # last use (LRU clock)


@dataclass(frozen=True)
class DerivedFile:
    """A file made from media (decoded PCM, a speech render): counted in the quota,
    evicted by the same rules. `source` is what it was made from: the media's SHA-256,
    or for speech the hash of voice and text."""

    path: Path
    source: str
    size: int
    mtime: float


@dataclass(frozen=True)
class PartialInfo:
    ref: MediaRef
    durable: int  # bytes known fsynced
    on_disk: int


@dataclass
class VerifyReport:
    ok: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)


def ref_to_json(ref: MediaRef) -> dict[str, object]:
    return asdict(ref)


def ref_from_json(obj: object) -> MediaRef:
    """Rebuild a MediaRef written by this module; raise ValueError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("media reference is not an object")
    url, sha, size, typ = obj.get("url"), obj.get("sha256"), obj.get("size"), obj.get("type")
    if not isinstance(url, str) or not url:
        raise ValueError("media reference: url missing")
    check_sha256(sha)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("media reference: size must be an integer >= 0")
    if not isinstance(typ, str):
        raise ValueError("media reference: type missing")
    assert isinstance(sha, str)
    return MediaRef(url=url, sha256=sha, size=size, type=typ)


def is_locked(path: Path) -> bool:
    """True if another open file description holds the download lock on `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our own lock, if we got it
    return False


class MediaRejected(ValueError):
    """Media handed to the cache directly (`MediaCache.store_bytes`) that it refuses."""


class MediaCache:
    """The store: paths from hashes only, verified reads, pins, quota and LRU eviction.

    Synchronous and small; the async download and scrub loops live elsewhere and
    call in. Constructing one touches no file; `recover()` (at start) creates the
    folders and cleans what a crash left.
    """

    def __init__(
        self,
        root: Path,
        quota_bytes: int,
        *,
        emit_event: EmitEvent,
        reserve_bytes: int = 32 * MiB,
        trust_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if quota_bytes <= 0:
            raise ValueError(f"cache quota must be > 0 bytes, got {quota_bytes}")
        if reserve_bytes < 0:
            raise ValueError(f"disk reserve must be >= 0 bytes, got {reserve_bytes}")
        self.root = Path(root)
        self.quota_bytes = quota_bytes
        # Room kept free on the card for the outbox and state database, which
        # matter more than one more programme.
        self.reserve_bytes = reserve_bytes
        self._emit = emit_event
        self._trust_s = trust_s
        self._clock = clock
        self._pins: dict[str, dict[str, MediaRef]] = {}
        self._verified: dict[str, tuple[int, int, float]] = {}  # sha -> (ino, size, when)
        self._active: dict[str, int] = {}  # partials this process is writing -> full size
        self._last_event: dict[tuple[str, str], float] = {}
        self.derived_dir: Path | None = None
        self._in_use: Callable[[], set[Path]] = set
        # Bumped by every change this cache makes to its objects; `stats(max_age_s)`
        # reuses the last walk only while it is unchanged (threads read and bump it).
        self._generation = 0
        self._stats_memo: tuple[int, float, CacheStats] | None = None

    def set_derived(self, folder: Path, in_use: Callable[[], set[Path]]) -> None:
        """Count the files derived from media under `folder` (decoded audio, speech,
        later rendered slides) in the quota and evict them by the same rules; never
        one in `in_use()` (what is prepared, sounding or showing now)."""
        self.derived_dir = folder
        self._in_use = in_use

    # ---- paths -----------------------------------------------------------------

    def object_path(self, sha256: str) -> Path:
        """Where the object for `sha256` lives (whether or not it exists)."""
        sha = check_sha256(sha256)
        return self.root / sha[:2] / sha

    @property
    def partial_dir(self) -> Path:
        return self.root / PARTIAL_DIR

    @property
    def quarantine_dir(self) -> Path:
        return self.root / QUARANTINE_DIR

    def ensure_dirs(self) -> None:
        for d in (self.root, self.partial_dir, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)

    # ---- lookups ---------------------------------------------------------------

    def has(self, sha256: str) -> bool:
        """Cheap: a complete object is stored (not re-hashed; see path_for)."""
        try:
            return self.object_path(sha256).is_file()
        except ValueError:
            return False

    def is_fresh(self, sha256: str) -> bool:
        """The object was hashed less than `trust_s` ago and not replaced since."""
        memo = self._verified.get(sha256)
        if memo is None:
            return False
        try:
            st = self.object_path(sha256).stat()
        except (FileNotFoundError, ValueError):
            return False
        return (
            memo[0] == st.st_ino
            and memo[1] == st.st_size
            and self._clock() - memo[2] < self._trust_s
        )

    def path_for(self, sha256: str) -> Path | None:
        """Path of a complete object whose bytes match `sha256`, else None.

        Re-hashes the file unless it was verified less than `trust_s` ago and has
        not been replaced since, so a player is never handed bytes that stopped
        matching. A mismatch quarantines the file (and emits `cache_corrupt`).
        """
        if not is_sha256(sha256):
            return None
        path = self.object_path(sha256)
        if self.is_fresh(sha256):
            return path
        try:
            digest, _ = hash_file(path)
        except FileNotFoundError:
            self._verified.pop(sha256, None)
            return None
        if digest != sha256:
            self.quarantine(sha256, reason="content no longer matches its sha256")
            return None
        self.mark_verified(sha256)
        return path

    def mark_verified(self, sha256: str) -> None:
        """Record that the object was just hashed and matched (by the scrubber/downloader)."""
        try:
            st = self.object_path(sha256).stat()
        except FileNotFoundError:
            return
        self._verified[sha256] = (st.st_ino, st.st_size, self._clock())

    def touch(self, sha256: str) -> None:
        """Mark the object as just used, moving it to the young end of the LRU."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            os.utime(self.object_path(sha256))

    def objects(self) -> Iterator[StoredObject]:
        """Every stored object (files whose name is not a digest are ignored)."""
        try:
            subdirs = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for sub in subdirs:
            if len(sub.name) != 2 or not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                if not is_sha256(entry.name) or not entry.name.startswith(sub.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield StoredObject(entry.name, st.st_size, st.st_mtime)

    def stats(self, max_age_s: float = 0.0) -> CacheStats:
        """Objects stored and their bytes. `max_age_s` > 0 allows the last count when
        it is that recent and this cache changed nothing since (the heartbeat's way:
        STATS_MAX_AGE_S); 0 always walks (quota decisions)."""
        memo = self._stats_memo
        now = time.monotonic()
        if memo is not None and memo[0] == self._generation and now - memo[1] < max_age_s:
            return memo[2]
        generation = self._generation  # before the walk: a change during it is not lost
        items = 0
        total = 0
        for obj in self.objects():
            items += 1
            total += obj.size
        result = CacheStats(items, total)
        self._stats_memo = (generation, now, result)
        return result

    def _changed(self) -> None:
        self._generation += 1

    def derived(self) -> list[DerivedFile]:
        """Every derived file (see `set_derived`), anywhere under its folder."""
        if self.derived_dir is None:
            return []
        out: list[DerivedFile] = []
        stack = [self.derived_dir]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(Path(e.path))
                        continue
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                source = e.name.split(".", 1)[0]
                out.append(DerivedFile(Path(e.path), source, st.st_size, st.st_mtime))
        return out

    def used_bytes(self) -> int:
        """Everything the cache holds on disk: objects, partials, quarantine, derived."""
        total = self.stats().bytes + sum(d.size for d in self.derived())
        for d in (self.partial_dir, self.quarantine_dir):
            with contextlib.suppress(FileNotFoundError):
                for e in os.scandir(d):
                    with contextlib.suppress(FileNotFoundError):
                        total += e.stat(follow_symlinks=False).st_size
        return total

    def missing(self, refs: Iterable[MediaRef]) -> list[MediaRef]:
        """The refs (deduplicated, order kept) whose object is not stored."""
        out: list[MediaRef] = []
        seen: set[str] = set()
        for ref in refs:
            if ref.sha256 in seen:
                continue
            seen.add(ref.sha256)
            if not self.has(ref.sha256):
                out.append(ref)
        return out

    # ---- pins ------------------------------------------------------------------

    def set_pins(self, kind: str, refs: Iterable[MediaRef]) -> None:
        """Replace the set of refs `kind` ("schedule", "alert", "fallback", …) needs.

        Pinned objects are never evicted. Written to pins.json so the technician
        CLI and the next boot (before the scheduler speaks) see them too.
        """
        pins = {r.sha256: r for r in refs if is_sha256(r.sha256)}
        if self._pins.get(kind, {}).keys() == pins.keys():
            self._pins[kind] = pins
            return
        self._pins[kind] = pins
        self._save_pins()

    def pins(self) -> dict[str, dict[str, MediaRef]]:
        return {k: dict(v) for k, v in self._pins.items()}

    def pinned(self) -> set[str]:
        return {sha for refs in self._pins.values() for sha in refs}

    def load_pins(self) -> None:
        """Read pins.json (left by the last run); a damaged file is reported and ignored."""
        try:
            raw = (self.root / PINS_FILE).read_bytes()
        except FileNotFoundError:
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            pins: dict[str, dict[str, MediaRef]] = {}
            for kind, refs in data.items():
                if not isinstance(refs, list):
                    raise ValueError(f"{kind}: not a list")
                pins[str(kind)] = {r.sha256: r for r in map(ref_from_json, refs)}
        except ValueError as exc:
            self.event("warning", "cache_corrupt", f"{PINS_FILE} unreadable, ignored: {exc}")
            return
        self._pins = pins

    def _save_pins(self) -> None:
        data = {k: [ref_to_json(r) for r in v.values()] for k, v in sorted(self._pins.items())}
        self.root.mkdir(parents=True, exist_ok=True)
        # Not fsynced: losing the last pin update to a power cut only means the
        # scheduler's next call re-pins; it is never needed for correctness.
        atomic_write(self.root / PINS_FILE, json.dumps(data, indent=1).encode(), durable=False)

    # ---- space -----------------------------------------------------------------

    def disk_free(self) -> int:
        """Bytes free on the card for us (statvfs of the cache folder, minus nothing)."""
        probe = self.root if self.root.exists() else self.root.parent
        return shutil.disk_usage(probe).free

    def _reserved(self, exclude: str | None) -> int:
        """Bytes other running downloads of this process will still write."""
        total = 0
        for sha, size in self._active.items():
            if sha == exclude or self.has(sha):
                continue  # a just-published object is counted in used_bytes already
            try:
                have = (self.partial_dir / f"{sha}.part").stat().st_size
            except FileNotFoundError:
                have = 0
            total += max(0, size - have) + SIDECAR_SLACK
        return total

    def space_problem(self, nbytes: int, *, exclude: str | None = None) -> str | None:
        """Why `nbytes` more cannot be stored now, or None if they fit.

        Counts what the other running downloads (`exclude` is the caller's own)
        will still write, so parallel downloads cannot overshoot the quota together.
        """
        used = self.used_bytes() + self._reserved(exclude)
        if used + nbytes + SIDECAR_SLACK > self.quota_bytes:
            return (
                f"cache quota full: need {_mb(nbytes)}, {_mb(used)} of "
                f"{_mb(self.quota_bytes)} used by media that is still needed"
            )
        free = self.disk_free()
        if free - nbytes - self._reserved(exclude) < self.reserve_bytes:
            return (
                f"disk full: need {_mb(nbytes)} + {_mb(self.reserve_bytes)} reserve, "
                f"{_mb(free)} free"
            )
        return None

    def trim(self) -> bool:
        """Evict until everything is back within the quota (after derived files were
        written, which no download reserved room for). Returns whether it fits."""
        return self.evict_for(0)

    def evict_for(self, nbytes: int, *, exclude: str | None = None) -> bool:
        """Free room for `nbytes` by deleting least recently used unpinned files.

        Order: quarantined files, abandoned partial downloads, then unpinned
        objects oldest-used first. Never touches a pinned object or a partial
        being written. Returns whether `nbytes` now fit (quota and disk).
        """
        if self.space_problem(nbytes, exclude=exclude) is None:
            return True
        for path in self._eviction_candidates():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # (a file in use stays readable by whoever has it open)
                self._changed()
                if path.suffix == ".part":
                    path.with_suffix(".json").unlink(missing_ok=True)
            self._verified.pop(path.name, None)
            if self.space_problem(nbytes, exclude=exclude) is None:
                return True
        return False

    def _eviction_candidates(self) -> Iterator[Path]:
        with contextlib.suppress(FileNotFoundError):
            yield from sorted(self.quarantine_dir.iterdir(), key=_mtime)
        pinned = self.pinned()
        with contextlib.suppress(FileNotFoundError):
            parts = [
                p
                for p in self.partial_dir.glob("*.part")
                if p.stem not in pinned and p.stem not in self._active and not is_locked(p)
            ]
            yield from sorted(parts, key=_mtime)
        # Derived files are cheaper to make again than media to fetch: first those of
        # media nothing pins (and speech), oldest first; never one in use now.
        # A dot-file is being written (decode/speech temp); one an hour old was left by
        # a crash.
        in_use = self._in_use()
        stale = time.time() - TEMP_STALE_S
        derived = [
            d
            for d in self.derived()
            if d.path not in in_use and (not d.path.name.startswith(".") or d.mtime < stale)
        ]
        for d in sorted(derived, key=lambda d: d.mtime):
            if d.source not in pinned:
                yield d.path
        lru = sorted((o for o in self.objects() if o.sha256 not in pinned), key=lambda o: o.mtime)
        for obj in lru:
            yield self.object_path(obj.sha256)

    # ---- publish / integrity ---------------------------------------------------

    def publish(self, sha256: str, src: Path) -> Path:
        """Move a fully written, fsynced, verified file into the store atomically."""
        dest = self.object_path(sha256)
        created = not dest.parent.exists()
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(src, 0o444)  # an accidental write by a tool fails instead of corrupting
        os.replace(src, dest)
        self._changed()
        fsync_dir(dest.parent)
        if created:
            fsync_dir(self.root)
        self._verified[sha256] = (dest.stat().st_ino, dest.stat().st_size, self._clock())
        return dest

    @property
    def max_media_bytes(self) -> int:
        """The largest single media file the cache accepts: its quota (the bound on a
        MediaRef's declared `size` too, docs/PROTOCOL-NOTES.md)."""
        return self.quota_bytes

    def store_bytes(self, sha256: str, data: bytes) -> Path:
        """Store media that arrived inside a command (a CAP `derefUri`): the same
        content-addressed, fsynced, atomically published object a download makes.

        Raises MediaRejected when `data` does not hash to `sha256` or is larger than
        `max_media_bytes`, OSError (ENOSPC …) when it cannot be written."""
        check_sha256(sha256)
        if len(data) > self.max_media_bytes:
            raise MediaRejected(
                f"{_mb(len(data))} is above the cache's max media size {_mb(self.max_media_bytes)}"
            )
        if hashlib.sha256(data).hexdigest() != sha256:
            raise MediaRejected("the bytes do not hash to their sha256")
        if self.has(sha256):
            self.touch(sha256)
            return self.object_path(sha256)
        self.ensure_dirs()
        if not self.evict_for(len(data)):
            raise OSError(errno.ENOSPC, self.space_problem(len(data)) or "no space")
        # A dot-name that is no `.part`: eviction never takes it mid-write, and
        # `recover()` removes it if a crash leaves it behind.
        fd, name = tempfile.mkstemp(dir=self.partial_dir, prefix=f".{sha256}.", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return self.publish(sha256, tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def quarantine(
        self, sha256: str, *, reason: str = "content does not match its SHA-256"
    ) -> None:
        """Move a stored object aside (it will be fetched again) and report it."""
        src = self.object_path(sha256)
        self._verified.pop(sha256, None)
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        dest = self.quarantine_dir / f"{sha256}.{time.time_ns()}"
        try:
            os.replace(src, dest)
        except FileNotFoundError:
            return
        self._changed()
        with contextlib.suppress(OSError):
            fsync_dir(src.parent)
        kept = sorted(self.quarantine_dir.iterdir(), key=_mtime)
        for old in kept[:-QUARANTINE_KEEP]:
            old.unlink(missing_ok=True)
        self.event("error", "cache_corrupt", f"media {sha256} quarantined: {reason}")

    def verify_all(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Re-hash every stored object now; quarantine those that no longer match."""
        report = VerifyReport()
        for obj in list(self.objects()):
            digest, _ = hash_file(self.object_path(obj.sha256), on_bytes=progress)
            if digest == obj.sha256:
                self.mark_verified(obj.sha256)
                report.ok.append(obj.sha256)
            else:
                self.quarantine(obj.sha256, reason="content no longer matches its sha256")
                report.corrupt.append(obj.sha256)
        return report

    # ---- partial downloads ------------------------------------------------------

    def partials(self) -> list[PartialInfo]:
        """Partial downloads on disk with readable metadata."""
        out: list[PartialInfo] = []
        with contextlib.suppress(FileNotFoundError):
            for part in sorted(self.partial_dir.glob("*.part")):
                info = self._partial_info(part)
                if info is not None:
                    out.append(info)
        return out

    def recover(self) -> list[MediaRef]:
        """At start: clean what a crash or power cut left; return downloads to resume.

        A partial with valid metadata is cut back to its durable length (bytes after
        that may be garbage after a power cut) and kept for resuming; a partial
        without metadata, one whose object is already stored, and stray temp files
        are removed. Partials locked by a running download are left alone.
        """
        self.ensure_dirs()
        self.load_pins()
        resumable: list[MediaRef] = []
        for entry in list(self.partial_dir.iterdir()):
            if entry.suffix == ".json":
                if not entry.with_suffix(".part").exists():
                    entry.unlink(missing_ok=True)
                continue
            if entry.suffix != ".part" or not is_sha256(entry.stem):
                entry.unlink(missing_ok=True)  # `.x.tmp` of an interrupted atomic_write
                continue
            if entry.stem in self._active or is_locked(entry):
                continue
            info = self._partial_info(entry)
            if info is None or self.has(entry.stem) or info.durable > info.ref.size:
                entry.unlink(missing_ok=True)
                entry.with_suffix(".json").unlink(missing_ok=True)
                continue
            if info.on_disk > info.durable:
                os.truncate(entry, info.durable)
            resumable.append(info.ref)
        for sub in self.root.iterdir():
            if len(sub.name) == 2 and sub.is_dir():
                for stray in sub.glob(".*.tmp"):
                    stray.unlink(missing_ok=True)
        return resumable

    def _partial_info(self, part: Path) -> PartialInfo | None:
        try:
            meta = json.loads(part.with_suffix(".json").read_bytes())
            ref = ref_from_json(meta.get("ref"))
            durable = meta.get("durable")
            if ref.sha256 != part.stem or not isinstance(durable, int) or durable < 0:
                return None
            return PartialInfo(ref, durable, part.stat().st_size)
        except (OSError, ValueError, AttributeError):
            return None

    def claim_partial(self, sha256: str, size: int) -> None:
        """This process is now writing the partial of `sha256` (`size` bytes in all)."""
        self._active[sha256] = size

    def release_partial(self, sha256: str) -> None:
        self._active.pop(sha256, None)

    # ---- events ----------------------------------------------------------------

    def event(self, level: str, code: str, detail: str, *, every_s: float = 0.0) -> None:
        """Emit an event; with `every_s`, the same code+detail at most that often."""
        if every_s > 0:
            key = (code, detail)
            now = self._clock()
            last = self._last_event.get(key)
            if last is not None and now - last < every_s:
                return
            self._last_event[key] = now
        self._emit(level, code, detail)


def is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _mb(n: int) -> str:
    return f"{n / MiB:.1f} MiB"
