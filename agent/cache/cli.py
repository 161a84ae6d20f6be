"""`tcs-agent cache ls | verify | fetch`: the technician's view of the media cache.

Wired into `tcs-agent` by agent/cli.py through `add_subparsers`; also runnable
alone as `python -m agent.cache.cli fetch URL SHA256 --dir DIR` (tests, rescue).
Exit codes: 0 fine, 1 something is wrong (a failed fetch, a corrupt file), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.cache.digest import is_sha256
from agent.cache.download import Downloader, FetchError, default_client, local_path
from agent.cache.progress import ProgressPrinter
from agent.cache.store import MediaCache, PartialInfo

MiB = 1 << 20


@dataclass(frozen=True)
class CacheSettings:
    dir: Path  # [storage] dir; the cache is <dir>/cache
    quota_mb: int = 2048
    max_kbps: int = 0
    max_parallel: int = 2


class UsageError(Exception):
    pass


def _storage_dir_from_config(path: Path) -> CacheSettings:
    """Read the cache's settings from the agent configuration (agent.config, lazily)."""
    from agent.config import ConfigError, load_config

    try:
        cfg = load_config(path, require_device_key=False)
    except ConfigError as exc:
        raise UsageError("\n".join(exc.problems)) from None
    return CacheSettings(
        dir=cfg.storage.dir,
        quota_mb=cfg.storage.cache_quota_mb,
        max_kbps=cfg.cache.max_kbps,
        max_parallel=cfg.cache.max_parallel,
    )


def _settings(args: argparse.Namespace) -> CacheSettings:
    if args.config is not None:
        s = _storage_dir_from_config(Path(args.config))
    elif args.dir is not None:
        s = CacheSettings(dir=Path(args.dir))
    else:
        raise UsageError("say which cache: -c CONFIG (the agent's config file) or --dir DIR")
    if getattr(args, "max_kbps", None) is not None:
        s = CacheSettings(s.dir, s.quota_mb, args.max_kbps, s.max_parallel)
    return s


def _emit(level: str, code: str, detail: str) -> None:
    print(f"{level}: {code}: {detail}", file=sys.stderr)


def _open_cache(s: CacheSettings) -> MediaCache:
    cache = MediaCache(s.dir / "cache", s.quota_mb * MiB, emit_event=_emit)
    # Derived files (decoded audio, speech) count in the quota; from here none is in
    # use as far as we can know, so an eviction from here keeps to the pins.
    cache.set_derived(s.dir / "pcm", set)
    cache.ensure_dirs()
    cache.load_pins()  # so a fetch from here never evicts what the agent needs
    return cache


def _mb(n: int) -> str:
    return f"{n / MiB:.1f} MiB"


# ---- ls ----------------------------------------------------------------------------


def cmd_ls(args: argparse.Namespace) -> int:
    s = _settings(args)
    cache = _open_cache(s)
    pins = cache.pins()
    by_sha: dict[str, list[str]] = {}
    for kind, refs in sorted(pins.items()):
        for sha in refs:
            by_sha.setdefault(sha, []).append(kind)
    objects = sorted(cache.objects(), key=lambda o: -o.mtime)
    derived = sorted(cache.derived(), key=lambda d: -d.mtime)
    print(
        f"cache {cache.root}: {len(objects)} files + {len(derived)} derived, "
        f"{_mb(cache.used_bytes())} of {_mb(cache.quota_bytes)} quota, "
        f"{_mb(cache.disk_free())} free on disk"
    )
    if objects:
        print(f"{'SHA256':64}  {'SIZE':>10}  {'LAST USED':16}  REFERENCED BY")
    for o in objects:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(o.mtime))
        print(f"{o.sha256}  {_mb(o.size):>10}  {used:16}  {','.join(by_sha.get(o.sha256, []))}")
    stored = {o.sha256 for o in objects}
    missing = [
        (sha, kinds, ref)
        for sha, kinds in sorted(by_sha.items())
        for ref in [next(p[sha] for p in pins.values() if sha in p)]
        if sha not in stored
    ]
    print(f"missing (referenced, not stored): {len(missing)}")
    for sha, kinds, ref in missing:
        print(f"  {sha}  {_mb(ref.size):>10}  {','.join(kinds):16}  {ref.url}")
    if derived:
        print(f"derived files (decoded audio, speech): {len(derived)}")
        for d in derived:
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.mtime))
            pinned = ",".join(by_sha.get(d.source, [])) or "-"
            print(f"  {d.path.name:72}  {_mb(d.size):>10}  {used:16}  {pinned}")
    partials: list[PartialInfo] = cache.partials()
    if partials:
        print(f"partial downloads: {len(partials)}")
        for p in partials:
            pct = 100 * p.on_disk // max(1, p.ref.size)
            print(f"  {p.ref.sha256}  {pct:3d}% of {_mb(p.ref.size)}  {p.ref.url}")
    return 0


# ---- verify ------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    s = _settings(args)
    cache = _open_cache(s)
    total = cache.stats().bytes
    done = 0
    bar = ProgressPrinter(sys.stdout, tty=sys.stdout.isatty())

    def step(n: int) -> None:
        nonlocal done
        done += n
        bar(done, total)

    report = cache.verify_all(progress=step)
    for sha in report.corrupt:
        print(f"CORRUPT {sha}: quarantined; the agent fetches it again")
    print(f"verified {len(report.ok) + len(report.corrupt)} files: {len(report.corrupt)} corrupt")
    return 1 if report.corrupt else 0


# ---- fetch -------------------------------------------------------------------------


async def _remote_size(url: str) -> int:
    """Size of what `url` serves (HEAD), for `fetch` without --size."""
    async with default_client() as client:
        resp = await client.head(url)
    length = resp.headers.get("content-length")
    if resp.status_code != 200 or length is None or not length.isdigit():
        raise UsageError(f"cannot learn the size of {url} (HTTP {resp.status_code}); give --size")
    return int(length)


async def _fetch(args: argparse.Namespace, s: CacheSettings) -> int:
    from agent.model import MediaRef

    size = args.size
    if size is None:
        if args.url.startswith("file:"):
            size = local_path(args.url).stat().st_size
        else:
            size = await _remote_size(args.url)
        print(f"size not given; the source says {size} bytes")
    ref = MediaRef(url=args.url, sha256=args.sha256, size=size, type="application/octet-stream")
    cache = _open_cache(s)
    bar = ProgressPrinter(sys.stdout, tty=sys.stdout.isatty())
    d = Downloader(cache, max_parallel=1, max_kbps=s.max_kbps)
    try:
        path = await d.fetch(ref, progress=bar)
    except FetchError as exc:
        print(f"FAILED: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        await d.aclose()
    print(f"stored {path}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    if not is_sha256(args.sha256):
        raise UsageError(f"not a SHA-256 (64 lowercase hex digits): {args.sha256!r}")
    if args.size is not None and args.size < 0:
        raise UsageError("--size must be >= 0")
    s = _settings(args)
    try:
        return asyncio.run(_fetch(args, s))
    except (httpx.HTTPError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1


# ---- wiring ------------------------------------------------------------------------


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except UsageError as exc:
            print(f"tcs-agent cache: {exc}", file=sys.stderr)
            return 2

    return run


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="FILE", help="the agent's configuration file")
    p.add_argument("--dir", metavar="DIR", help="the [storage] dir, if no config file is at hand")


def add_subparsers(subparsers: Any) -> None:
    """Register `ls`, `verify`, `fetch` on the `tcs-agent cache` subparsers action."""
    ls = subparsers.add_parser("ls", help="what is stored, what is referenced, what is missing")
    _common(ls)
    ls.set_defaults(func=_guard(cmd_ls))
    verify = subparsers.add_parser("verify", help="re-hash every stored file now")
    _common(verify)
    verify.set_defaults(func=_guard(cmd_verify))
    fetch = subparsers.add_parser("fetch", help="download (or copy a file:// URL) into the cache")
    _common(fetch)
    fetch.add_argument("url")
    fetch.add_argument("sha256")
    fetch.add_argument("--size", type=int, help="expected size in bytes (else asked with HEAD)")
    fetch.add_argument("--max-kbps", type=int, help="bandwidth cap, kbit/s (default: config)")
    fetch.set_defaults(func=_guard(cmd_fetch))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcs-agent cache", description=__doc__)
    add_subparsers(parser.add_subparsers(dest="cache_command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
