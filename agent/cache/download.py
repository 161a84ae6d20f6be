"""Fetching MediaRefs into the store over HTTP(S) or from `file://` (a technician's USB stick).

Every download goes `.partial/<sha>.part` → size and SHA-256 checked → fsync →
rename into the store → fsync of the directory. Interruptions of any kind (link
cut, server restart, process killed, power cut) resume with an HTTP Range from
the last durable commit; transient failures are retried with jittered
exponential back-off (tenacity) so a commune's worth of devices do not retry in
lock-step. Wrong bytes, a wrong size or a body longer than announced never
enter the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from agent.cache.digest import hash_file, is_sha256
from agent.cache.partial import PartialBusy, PartialFile
from agent.cache.ratelimit import AsyncLimiter, kbps_to_bytes_per_s
from agent.cache.store import MediaCache, is_enospc
from agent.model import MediaRef

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
ClientFactory = Callable[[], httpx.AsyncClient]

COMMIT_BYTES = 1 << 20  # one "chunk": the most a resume may download twice
# Bytes handed to the writer thread at once: large enough that the hand-over
# (a thread switch) is negligible per byte, small enough to bound memory.
BATCH_BYTES = 1 << 20
# ...or after this long, whichever comes first: on a slow link a batch would
# otherwise sit in memory for seconds, and a kill would lose bytes that had
# already crossed the (paid-for) link.
BATCH_WAIT_S = 0.1
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class FetchError(Exception):
    """A MediaRef could not be stored; `reason` says why in words an operator reads."""

    def __init__(self, ref: MediaRef, reason: str) -> None:
        super().__init__(f"{ref.url} ({ref.sha256[:12]}…): {reason}")
        self.ref = ref
        self.reason = reason


@dataclass
class PrefetchReport:
    ok: list[MediaRef] = field(default_factory=list)
    failed: list[tuple[MediaRef, str]] = field(default_factory=list)


class _Transient(Exception):
    """Worth another attempt (link cut, 5xx, timeout, truncated body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Permanent(Exception):
    """Another attempt would not help (404, wrong bytes, disk full)."""

    def __init__(self, reason: str, *, discard: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.discard = discard


def default_client() -> httpx.AsyncClient:
    # A read timeout, because a server that hangs mid-body must not hold a
    # download slot forever; identity encoding, because Range offsets count raw bytes.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=15.0, pool=None),
        follow_redirects=True,
        headers={"Accept-Encoding": "identity", "User-Agent": "tcs-agent-cache"},
    )


def validate_ref(ref: MediaRef) -> None:
    """Raise FetchError if the reference itself cannot be fetched safely."""
    if not is_sha256(ref.sha256):
        raise FetchError(ref, "sha256 is not 64 lowercase hex digits")
    if not isinstance(ref.size, int) or ref.size < 0:
        raise FetchError(ref, f"size must be an integer >= 0, got {ref.size!r}")
    scheme = urlsplit(ref.url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise FetchError(ref, f"unsupported URL scheme {scheme or '(none)'!r}")


def is_private_address(address: str) -> bool:
    """Loopback, private (RFC 1918/4193), link-local, CGNAT, multicast or unspecified."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_public_host(host: str, port: int) -> None:
    """Raise ValueError if `host` is or resolves to a non-public address.

    A command naming http://192.168.1.1/... would otherwise learn, from the ack,
    what answers on the device's own network. (A name re-resolved differently by
    the HTTP client a moment later is not covered; the digest check still holds.)
    """
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"cannot resolve host {host!r}: {exc.strerror or exc}") from None
    for info in infos:
        if is_private_address(str(info[4][0])):
            raise ValueError(f"host {host!r} is a loopback, LAN or link-local address; "
                             "refused ([cache] allow_private_hosts)")


def open_regular(path: Path) -> int:
    """Open `path` read-only as a regular file: no symlink at the end, no blocking open
    (a FIFO or /dev/ttyS0 must not hang a download slot). Returns the fd."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def local_path(url: str) -> Path:
    """The file a `file://` URL names (local host only)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"file URL on another host: {parts.netloc!r}")
    return Path(unquote(parts.path))


class Downloader:
    """At most `max_parallel` downloads at once, sharing one `max_kbps` cap (0 = none)."""

    def __init__(
        self,
        cache: MediaCache,
        *,
        max_parallel: int = 2,
        max_kbps: int = 0,
        client_factory: ClientFactory = default_client,
        attempts: int = 5,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        commit_bytes: int = COMMIT_BYTES,
        allow_file: bool = True,
        allow_private_hosts: bool = True,
    ) -> None:
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.cache = cache
        self._sem = asyncio.Semaphore(max_parallel)
        rate = kbps_to_bytes_per_s(max_kbps)
        # Burst of 1/8 s: enough to absorb one socket read, small enough that a
        # short download cannot exceed the cap noticeably.
        self._limiter = AsyncLimiter(rate, max(8192.0, rate / 8)) if rate > 0 else None
        self._client_factory = client_factory
        self._client: httpx.AsyncClient | None = None
        self._attempts = attempts
        self._backoff = (backoff_s, backoff_max_s)
        self._commit_bytes = commit_bytes
        self._inflight: dict[str, asyncio.Task[Path]] = {}
        # The technician's CLI may read local files and fetch from the LAN; the agent
        # serving commands passes False for both (agent/media.py).
        self._allow_file = allow_file
        self._allow_private = allow_private_hosts

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        for task in list(self._inflight.values()):
            with contextlib.suppress(BaseException):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._client_factory()
            if not self._allow_private:
                # On every request, redirects included.
                self._client.event_hooks["request"].append(self._check_host)
        return self._client

    @staticmethod
    async def _check_host(request: httpx.Request) -> None:
        try:
            await check_public_host(request.url.host, request.url.port or 443)
        except ValueError as exc:
            raise _Permanent(str(exc), discard=False) from None

    # ---- public ----------------------------------------------------------------

    async def fetch(self, ref: MediaRef, progress: Progress | None = None) -> Path:
        """Store `ref` (or find it stored and verified); return the object's path.

        Concurrent calls for the same hash share one download. Raises FetchError.
        """
        validate_ref(ref)
        if not self._allow_file and urlsplit(ref.url).scheme.lower() == "file":
            raise FetchError(ref, "file:// URLs are for the technician's CLI only")
        stored = await self._stored_path(ref.sha256)
        if stored is not None:
            self.cache.touch(ref.sha256)
            if progress is not None:
                progress(ref.size, ref.size)
            return stored
        task = self._inflight.get(ref.sha256)
        if task is None:
            task = asyncio.create_task(self._fetch_slot(ref, progress))
            self._inflight[ref.sha256] = task
            task.add_done_callback(functools.partial(self._done, ref.sha256))
        return await asyncio.shield(task)

    async def prefetch(self, refs: Iterable[MediaRef]) -> PrefetchReport:
        """Fetch every distinct ref (earliest first as given); never raises FetchError."""
        unique: dict[str, MediaRef] = {}
        for ref in refs:
            unique.setdefault(ref.sha256, ref)
        results = await asyncio.gather(
            *(self.fetch(r) for r in unique.values()), return_exceptions=True
        )
        report = PrefetchReport()
        for ref, res in zip(unique.values(), results, strict=True):
            if isinstance(res, FetchError):
                report.failed.append((ref, res.reason))
            elif isinstance(res, BaseException):
                if isinstance(res, asyncio.CancelledError):
                    raise res
                report.failed.append((ref, f"internal error: {res!r}"))
            else:
                report.ok.append(ref)
        return report

    def downloading(self) -> set[str]:
        """Hashes being fetched right now."""
        return set(self._inflight)

    # ---- internals -------------------------------------------------------------

    def _done(self, sha: str, task: asyncio.Task[Path]) -> None:
        if self._inflight.get(sha) is task:
            del self._inflight[sha]
        if not task.cancelled():
            task.exception()  # retrieved here so an abandoned waiter logs no warning

    async def _stored_path(self, sha: str) -> Path | None:
        """The stored object if present and matching (hashed off the event loop)."""
        if not self.cache.has(sha):
            return None
        path = self.cache.object_path(sha)
        if self.cache.is_fresh(sha):
            return path
        try:
            digest, _ = await asyncio.to_thread(hash_file, path)
        except FileNotFoundError:
            return None
        if digest != sha:
            self.cache.quarantine(sha, reason="content no longer matches its sha256")
            return None
        self.cache.mark_verified(sha)
        return path

    async def _fetch_slot(self, ref: MediaRef, progress: Progress | None) -> Path:
        async with self._sem:
            stored = await self._stored_path(ref.sha256)
            if stored is not None:
                return stored
            return await self._download(ref, progress)

    async def _download(self, ref: MediaRef, progress: Progress | None) -> Path:
        partial = PartialFile(self.cache.partial_dir, ref)
        try:
            try:
                # Room is checked and reserved before the first await, in the
                # order downloads got their slot (earliest need first).
                self._ensure_space(ref, _size_or_zero(partial.path))
            except _Permanent as exc:
                raise FetchError(ref, exc.reason) from None
            try:
                resumed_at = await asyncio.to_thread(partial.open)
            except PartialBusy as exc:
                raise FetchError(ref, str(exc)) from None
            restarted = False
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=self._backoff[0], max=self._backoff[1]),
                retry=retry_if_exception_type(_Transient),
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        self._ensure_space(ref, partial.offset)
                        await self._transfer(ref, partial, progress)
                        digest = partial.hexdigest()
                        if digest != ref.sha256:
                            if resumed_at > 0 and not restarted:
                                # The kept bytes may be what is wrong: one clean try.
                                restarted, resumed_at = True, 0
                                partial.restart()
                                raise _Transient("SHA-256 mismatch after a resume")
                            raise _Permanent(
                                # Never the computed hash: the ack must not reveal
                                # what a file the sender did not know contains.
                                f"wrong content: the bytes do not hash to {ref.sha256}",
                                discard=True,
                            )
            except _Permanent as exc:
                if exc.discard:
                    partial.discard()
                raise FetchError(ref, exc.reason) from None
            except _Transient as exc:
                raise FetchError(
                    ref, f"{exc.reason} (gave up after {self._attempts} attempts)"
                ) from None
            try:
                await asyncio.to_thread(partial.sync)
                path = await asyncio.to_thread(self.cache.publish, ref.sha256, partial.path)
            except OSError as exc:
                raise FetchError(ref, self._disk_error(exc)) from None
            partial.forget_meta()
            return path
        finally:
            partial.close()
            self.cache.release_partial(ref.sha256)

    def _ensure_space(self, ref: MediaRef, have: int) -> None:
        need = max(0, ref.size - have)
        if self.cache.evict_for(need, exclude=ref.sha256):
            # Reserve only once the room is found (no await in between), so a
            # download that will not fit never blocks one that would.
            self.cache.claim_partial(ref.sha256, ref.size)
            return
        problem = self.cache.space_problem(need, exclude=ref.sha256) or "no space"
        self.cache.event(
            "error", "disk_full", f"cannot store {ref.sha256[:12]}…: {problem}", every_s=600
        )
        raise _Permanent(problem, discard=False)

    def _disk_error(self, exc: OSError) -> str:
        if is_enospc(exc):
            reason = f"disk full while writing: {exc.strerror}"
            self.cache.event("error", "disk_full", reason, every_s=600)
            return reason
        return f"cannot write the cache: {exc}"

    async def _transfer(
        self, ref: MediaRef, partial: PartialFile, progress: Progress | None
    ) -> None:
        if urlsplit(ref.url).scheme.lower() == "file":
            await self._copy_local(ref, partial, progress)
        else:
            await self._get(ref, partial, progress)
        if partial.offset < ref.size:
            raise _Transient(f"body ended early: {partial.offset} of {ref.size} bytes")

    async def _copy_local(
        self, ref: MediaRef, partial: PartialFile, progress: Progress | None
    ) -> None:
        """Copy from a local file (USB stick) with the same checks as a download."""
        try:
            src = local_path(ref.url)
            fd = await asyncio.to_thread(open_regular, src)
        except (OSError, ValueError) as exc:
            raise _Permanent(f"cannot read {ref.url}: {exc}", discard=False) from None
        size = os.fstat(fd).st_size
        if size != ref.size:
            os.close(fd)
            raise _Permanent(f"wrong size: the file is not {ref.size} bytes", discard=False)

        def copy() -> None:
            with os.fdopen(fd, "rb") as f:
                f.seek(partial.offset)
                while block := f.read(1 << 20):
                    if partial.offset + len(block) > ref.size:
                        raise _Permanent("file grew while being copied", discard=True)
                    partial.append((block,), self._commit_bytes)
                    if progress is not None:
                        progress(partial.offset, ref.size)

        try:
            await asyncio.to_thread(copy)
        except OSError as exc:
            if is_enospc(exc):
                raise _Permanent(self._disk_error(exc), discard=False) from None
            raise _Transient(f"cannot read {ref.url}: {exc}") from None

    async def _get(self, ref: MediaRef, partial: PartialFile, progress: Progress | None) -> None:
        start = partial.offset
        headers = {"Range": f"bytes={start}-"} if start else {}
        writing: asyncio.Future[None] | None = None
        batch: list[bytes] = []
        try:
            async with self._http().stream("GET", ref.url, headers=headers) as resp:
                self._check_response(ref, resp, partial, start)
                # Network reads stay on the event loop; hashing, writing and
                # fsync go to a worker thread one batch at a time, so the two
                # overlap. At most one batch is being written while the next
                # one fills: memory stays bounded at ~2 batches.
                received = partial.offset
                limiter = self._limiter
                clock = time.monotonic
                batched = 0
                batch_since = 0.0
                async for chunk in resp.aiter_raw():
                    n = len(chunk)
                    received += n
                    if received > ref.size:
                        raise _Permanent(
                            f"wrong size: server sent more than the expected {ref.size} bytes",
                            discard=True,
                        )
                    if limiter is not None:
                        await limiter.take(n)
                    if not batch:
                        batch_since = clock()
                    batch.append(chunk)
                    batched += n
                    if batched >= BATCH_BYTES or clock() - batch_since >= BATCH_WAIT_S:
                        if writing is not None:
                            await writing
                            if progress is not None:
                                progress(partial.offset, ref.size)
                        writing = self._write_behind(partial, batch)
                        batch, batched = [], 0
                if writing is not None:
                    await writing
                if batch:
                    writing = self._write_behind(partial, batch)
                    batch = []
                    await writing
                if progress is not None:
                    progress(partial.offset, ref.size)
        except httpx.TransportError as exc:
            # The bytes that did arrive are good: keep them so the retry's
            # Range starts after them, not at the last batch boundary.
            await self._keep(partial, writing, batch)
            if isinstance(exc, httpx.TimeoutException):
                raise _Transient(f"timed out ({type(exc).__name__})") from None
            raise _Transient(f"connection failed: {exc or type(exc).__name__}") from None
        except OSError as exc:
            if is_enospc(exc):
                raise _Permanent(self._disk_error(exc), discard=False) from None
            raise
        finally:
            if writing is not None and not writing.done():
                # Leaving early (link cut, wrong size, cancelled): let the batch
                # in the worker finish before anyone restarts or closes the file.
                await asyncio.wait([writing])
            if writing is not None and writing.done() and not writing.cancelled():
                writing.exception()  # already reported (or moot): mark it retrieved

    async def _keep(
        self, partial: PartialFile, writing: asyncio.Future[None] | None, batch: list[bytes]
    ) -> None:
        """Write the batch received before a link failure (after the one in flight)."""
        try:
            if writing is not None:
                await writing
            if batch:
                await asyncio.to_thread(partial.append, batch, self._commit_bytes)
        except OSError as exc:
            if is_enospc(exc):
                raise _Permanent(self._disk_error(exc), discard=False) from None
            raise
        finally:
            batch.clear()

    def _write_behind(self, partial: PartialFile, batch: list[bytes]) -> asyncio.Future[None]:
        return asyncio.ensure_future(asyncio.to_thread(partial.append, batch, self._commit_bytes))

    def _check_response(
        self, ref: MediaRef, resp: httpx.Response, partial: PartialFile, start: int
    ) -> None:
        code = resp.status_code
        if code == 206:
            m = _CONTENT_RANGE.fullmatch(resp.headers.get("content-range", "").strip())
            if m is None or int(m.group(1)) != start:
                partial.restart()
                raise _Transient("server answered a different range; starting again from 0")
            if m.group(3) != "*" and int(m.group(3)) != ref.size:
                raise _Permanent(
                    f"wrong size: the server's file is not {ref.size} bytes", discard=True
                )
            return
        if code == 200:
            if start:
                partial.restart()  # the server ignored Range: take the whole body again
            length = resp.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) != ref.size:
                raise _Permanent(
                    f"wrong size: the server does not announce {ref.size} bytes",
                    discard=True,
                )
            return
        if code == 416:
            partial.restart()
            raise _Transient("server refused the resume range; starting again from 0")
        if code in (408, 425, 429) or code >= 500:
            raise _Transient(f"HTTP {code} {resp.reason_phrase}".strip())
        raise _Permanent(f"HTTP {code} {resp.reason_phrase}".strip(), discard=False)


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
