"""Derived files (decoded audio, speech renders) live within the cache quota: counted,
evicted by the same rules, never the ones the horizon or what plays now needs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from support.pulse import write_wav

from agent.cache.store import MediaCache
from agent.model import MediaRef
from playback.engine import AudioEngine

MiB = 1 << 20
QUOTA = 2 * MiB


def on_disk(*folders: Path) -> int:
    total = 0
    for folder in folders:
        for dirpath, _dirs, files in os.walk(folder):
            for f in files:
                total += (Path(dirpath) / f).stat().st_size
    return total


def media_file(folder: Path, i: int) -> tuple[Path, MediaRef]:
    t = np.arange(int(48000 * 1.5)) / 48000
    x = (0.3 * np.sin(2 * np.pi * (300 + 10 * i) * t)).astype(np.float32)
    path = write_wav(folder / f"m{i}.wav", x)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, MediaRef(f"https://cdn.example.vn/{i}.wav", sha, path.stat().st_size, "audio/wav")


def test_cache_derived_forty_schedules_and_ten_alerts_stay_within_quota(tmp_path: Path) -> None:
    storage = tmp_path / "state"
    cache = MediaCache(storage / "cache", QUOTA, emit_event=lambda *_: None, reserve_bytes=0)
    cache.ensure_dirs()
    in_use: set[Path] = set()
    cache.set_derived(storage / "pcm", lambda: set(in_use))
    src = tmp_path / "src"
    src.mkdir()

    async def main() -> None:
        engine = AudioEngine("none", 48000, storage / "pcm", emit_event=lambda *_: None)
        alert_pcm: list[Path] = []
        for version in range(40):
            path, ref = media_file(src, version)
            assert cache.evict_for(ref.size), f"version {version}: no room"
            cache.publish(ref.sha256, path)
            cache.set_pins("schedule", [ref])  # the new schedule needs only its media
            prepared = await engine.prepare([cache.object_path(ref.sha256)], [ref.sha256])
            assert cache.trim()
            assert cache.used_bytes() <= QUOTA
            assert on_disk(storage / "cache", storage / "pcm") <= QUOTA + 64 * 1024
            # What the horizon needs is kept: this schedule's media and its decoded audio.
            assert cache.has(ref.sha256) and all(f.exists() for f in prepared.files)
            if version % 4 == 0:
                alert = await engine.prepare_text(f"Cảnh báo lũ số {version}")
                in_use.clear()
                in_use.update(alert.files)  # an alert sounding now
                alert_pcm = list(alert.files)
                assert cache.trim()
                assert all(f.exists() for f in alert_pcm)  # never evicted while it sounds
                assert cache.used_bytes() <= QUOTA
        # The derived files are listed with their source.
        sources = {d.source for d in cache.derived()}
        assert ref.sha256 in sources

    asyncio.run(main())
    # The technician sees them too, with what they were made from.
    out = subprocess.run(
        [sys.executable, "-m", "agent", "cache", "ls", "--dir", str(storage)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "derived files (decoded audio, speech):" in out
    listed = [line for line in out.splitlines() if ".s16" in line]
    assert listed and any("schedule" in line for line in listed), out


def test_cache_derived_prefetched_audio_is_decoded_ahead(tmp_path: Path) -> None:
    """After `media.prefetch`, audio is decoded at once (derived file in the quota), so
    an alert naming it later starts without decoding first."""
    from support.fake_output import FakeOutput

    from agent.config import AlertsConfig
    from agent.playout.coordinator import AlertCoordinator
    from agent.playout.handlers import PlayoutHandlers
    from agent.playout.runner import Playout, PlayoutDeps
    from agent.playout.speaker import SpeakerOutput
    from agent.playout.wiring import PlayoutSide
    from playback.decode import pcm_path

    path, ref = media_file(tmp_path, 1)
    board = MediaRef("https://cdn.example.vn/b.png", "cd" * 32, 10, "image/png")

    async def media_path(sha: str) -> Path | None:
        return path if sha == ref.sha256 else None

    async def main() -> Path:
        engine = AudioEngine("none", 48000, tmp_path / "pcm", emit_event=lambda *_: None)
        loops = [
            Playout(
                PlayoutDeps(
                    output=out,
                    tz=ZoneInfo("Asia/Ho_Chi_Minh"),
                    media_path=media_path,
                    proof=_no_proof,
                    load_state=lambda: None,
                    save_state=lambda _t: None,
                )
            )
            for out in (SpeakerOutput(engine), FakeOutput("board", ["slides"]))
        ]
        co = AlertCoordinator(loops, media_path, wall=time.time)
        side = PlayoutSide(loops, co, PlayoutHandlers(co, AlertsConfig(), wall=time.time),
                           speaker=loops[0].d.output)  # type: ignore[arg-type]  # fmt: skip
        await side.predecode([ref, board])
        return pcm_path(tmp_path / "pcm", ref.sha256, 48000, 1)

    pcm = asyncio.run(main())
    assert pcm.is_file() and pcm.stat().st_size == 2 * int(48000 * 1.5)


async def _no_proof(_record: dict[str, object]) -> None:
    raise AssertionError("no proof expected")
