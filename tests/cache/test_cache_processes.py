"""Real processes: `kill -9` in the middle of a 20 MB download, and two capped agents."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.http_media import Behaviour, MediaServer
from support.media_cache import Events, make_ref, payload, run

from agent.cache.download import COMMIT_BYTES, Downloader
from agent.cache.store import MediaCache
from agent.model import MediaRef

REPO = Path(__file__).resolve().parents[2]


def cli(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cache.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def fetch_args(ref: MediaRef, store: Path, *extra: str) -> list[str]:
    return ["fetch", ref.url, ref.sha256, "--dir", str(store), "--size", str(ref.size), *extra]


def wait_for(cond: object, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def test_kill_9_at_random_points_resumes_and_redownloads_at_most_one_chunk(
    tmp_path: Path, server: MediaServer
) -> None:
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    body = payload(20 * 1000 * 1000, seed=7)
    ref = make_ref(server.add("/big.mp3", body, Behaviour(rate_bps=6_000_000)), body)
    store = tmp_path / "agent"
    part = store / "cache" / ".partial" / f"{ref.sha256}.part"
    had: list[int] = []  # bytes on disk when each process was killed
    # Random points spread over the whole download, one kill at each.
    targets = sorted(rnd.uniform(0.02, 0.95) * ref.size for _ in range(3))
    for target in targets:
        asked = len(server.served("/big.mp3"))
        proc = cli(fetch_args(ref, store))
        try:
            # This process's own request first: the partial the last one left may
            # already be past this target (it wrote on until it died).
            wait_for(lambda n=asked, t=target: len(server.served("/big.mp3")) > n  # type: ignore[misc]
                     and part.exists() and part.stat().st_size >= t, 30)  # fmt: skip
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL, f"seed {seed}: finished before the kill"
        had.append(part.stat().st_size)
    proc = cli(fetch_args(ref, store))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"seed {seed}: {err.decode()}"
    obj = store / "cache" / ref.sha256[:2] / ref.sha256
    assert obj.read_bytes() == body
    assert not part.exists()
    starts = [r.range_start or 0 for r in server.served("/big.mp3")]
    assert len(starts) == 4, f"seed {seed}: {starts}"
    for i, have in enumerate(had):
        redownloaded = have - starts[i + 1]
        assert 0 <= redownloaded <= COMMIT_BYTES, f"seed {seed}: run {i + 1} {have=} {starts=}"
    assert starts[-1] > 0
    print(f"kill -9 at {had} bytes; resumed at {starts[1:]}; seed {seed}")


def test_two_agents_on_one_slow_link_each_honour_max_kbps(
    tmp_path: Path,
) -> None:
    cap_kbps = 1600  # 200 kB/s each; the shared link carries 1 MB/s
    cap = cap_kbps * 1000 / 8
    size = 600_000
    with MediaServer(link_bps=1_000_000) as server:
        refs = []
        for i in range(2):
            body = payload(size, seed=20 + i)
            refs.append(make_ref(server.add(f"/p{i}", body), body))
        stores = [tmp_path / f"agent{i}" for i in range(2)]
        objs = [s / "cache" / r.sha256[:2] / r.sha256 for s, r in zip(stores, refs, strict=True)]
        procs = [
            cli(fetch_args(r, s, "--max-kbps", str(cap_kbps)))
            for r, s in zip(refs, stores, strict=True)
        ]
        done: dict[int, float] = {}
        try:
            end = time.monotonic() + 30
            while len(done) < 2 and time.monotonic() < end:
                for i, obj in enumerate(objs):
                    if i not in done and obj.exists():
                        done[i] = time.monotonic()
                time.sleep(0.005)
        finally:
            for p in procs:
                p.communicate(timeout=30)
        assert [p.returncode for p in procs] == [0, 0]
        rates = []
        for i in range(2):
            (req,) = server.served(f"/p{i}")
            rates.append(size / (done[i] - req.t_received))
    print(f"two agents, max_kbps={cap_kbps}: {[round(r / 1000, 1) for r in rates]} kB/s")
    for rate in rates:
        assert rate <= cap * 1.08, f"{rate / 1000:.0f} kB/s over the {cap / 1000:.0f} kB/s cap"
        assert rate >= cap * 0.6, f"{rate / 1000:.0f} kB/s: the cap starves the download"


def test_in_process_cap_spans_parallel_downloads(tmp_path: Path, server: MediaServer) -> None:
    """One agent, two files at once: the cap is for the device, not per file."""
    kbps = 800
    bodies = [payload(100_000, seed=40 + i) for i in range(2)]
    refs = [make_ref(server.add(f"/c{i}", b), b) for i, b in enumerate(bodies)]
    cache = MediaCache(tmp_path / "c", 1 << 30, emit_event=Events(), reserve_bytes=0)

    async def go() -> float:
        d = Downloader(cache, max_parallel=2, max_kbps=kbps)
        t0 = asyncio.get_running_loop().time()
        try:
            report = await d.prefetch(refs)
        finally:
            await d.aclose()
        assert len(report.ok) == 2
        return asyncio.get_running_loop().time() - t0

    elapsed = run(go())
    rate = 200_000 / elapsed
    print(f"one agent, two parallel downloads: {rate / 1000:.1f} kB/s, cap {kbps * 0.125} kB/s")
    assert kbps * 125 * 0.7 <= rate <= kbps * 125 * 1.08
