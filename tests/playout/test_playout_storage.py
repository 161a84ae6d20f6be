"""Issue 8 must-hold, on a real agent: 40 schedule versions with new media and 10
spoken alerts; everything on disk stays within `cache_quota_mb` (plus the databases),
derived files (decoded audio, speech) included."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from support.http_media import MediaServer
from support.playout import DEVICE, TZ, recording, sound_agent
from support.pulse import PulseRig, write_wav
from support.recorded import send_accepted
from support.timing import poll

from playback.decode import pcm_path

QUOTA_MB = 2
DB_SLACK = 8 << 20  # state.db with its WAL (auto-checkpoint at ~4 MB): "a few MB"


def trimmed(folder: Path, what: str) -> tuple[int, int]:
    """`on_disk(folder)` once everything but the databases is within the quota."""
    seen = [on_disk(folder)]
    try:
        poll(lambda: seen.append(on_disk(folder)) or seen[-1][0] <= QUOTA_MB << 20, timeout=30)
    except AssertionError:
        raise AssertionError(f"{what}: {seen[-1][0]} bytes on disk") from None
    return seen[-1]


def on_disk(folder: Path) -> tuple[int, int]:
    """(bytes of everything but the databases, bytes of the databases)."""
    files = dbs = 0
    for dirpath, _dirs, names in os.walk(folder):
        for n in names:
            try:
                size = (Path(dirpath) / n).stat().st_size
            except FileNotFoundError:  # evicted (or a temp renamed) since the listing
                continue
            if n.startswith("state.db"):
                dbs += size
            else:
                files += size
    return files, dbs


def test_playout_storage_forty_schedules_ten_alerts_within_quota(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    # The media server is on 127.0.0.1, which a device refuses unless allowed.
    agent, province, _ = sound_agent(
        tmp_path / "a", broker, extra="\n[cache]\nallow_private_hosts = true\n"
    )
    text = agent.config.read_text()
    agent.config.write_text(
        text.replace('dir = "state"\n', f'dir = "state"\ncache_quota_mb = {QUOTA_MB}\n')
    )
    storage = agent.config.parent / "state"
    server = MediaServer().start()
    worst = (0, 0)
    try:
        with recording(agent, province, pulse):
            for v in range(1, 41):
                t = np.arange(int(48000 * 1.5)) / 48000
                x = (0.2 * np.sin(2 * np.pi * (300 + 7 * v) * t)).astype(np.float32)
                body = write_wav(tmp_path / f"m{v}.wav", x).read_bytes()
                sha = hashlib.sha256(body).hexdigest()
                ref = {"url": server.add(f"/m{v}.wav", body), "sha256": sha,
                       "size": len(body), "type": "audio/wav"}  # fmt: skip
                # Due in 5 minutes: fetched now, decoded ahead (the runner's look-ahead).
                start = datetime.fromtimestamp(time.time() + 300, TZ).isoformat()
                item = {"id": f"prog{v}", "kind": "audio", "media": [ref], "start": start,
                        "window_s": 60}  # fmt: skip
                jti = province.send(DEVICE, "schedule.set", {"version": v, "items": [item]})
                ack = province.wait_ack(jti, timeout=30)
                assert ack["status"] == "accepted", ack
                pcm = pcm_path(storage / "pcm", sha, 48000, 1)
                deadline = time.monotonic() + 60  # hang guard only
                while not pcm.exists():
                    assert time.monotonic() < deadline, f"v{v}: never decoded"
                    time.sleep(0.05)
                if v % 4 == 0:  # ten spoken alerts, each a new text
                    jti = send_accepted(
                        province, "alert.start",
                        {"alert_id": f"a{v}", "text": f"Cảnh báo lũ lần {v}", "repeat": 1,
                         "chime": False}, timeout=30,
                    )  # fmt: skip
                    province.wait_ack(jti, status="done", timeout=60)
                # Within the quota once the agent has trimmed after the file it just
                # wrote (the cache makes room for a derived file after writing it: while
                # one decodes, it may be that file over; a loaded machine widens that).
                files, dbs = trimmed(storage, f"v{v}")
                worst = (max(worst[0], files), max(worst[1], dbs))
                assert dbs <= DB_SLACK, (v, dbs)
                # What the horizon needs is still there: this schedule's media, decoded.
                assert pcm.exists()
    finally:
        server.stop()
    assert worst[0] > (QUOTA_MB << 20) // 2  # the quota was actually pressed
