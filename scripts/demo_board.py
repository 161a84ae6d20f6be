"""The demo's board scene: a programme on the speaker and a slide loop on the board,
an emergency cutting in on both at once, and both resuming; reported from the sink's
recording and the board's frames.jsonl (scripts/demo.py, step 9).

Pure helpers (`tone_onsets`, `runs`) are separate from the scene so they read clearly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import wave
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

RATE = 48000
PROGRAMME_HZ = 440.0  # the programme's tone; the alert chime starts at 880 Hz
CHIME_HZ = 880.0
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
BOARD = (640, 360)


def board_config(frames: Path) -> str:
    """The `[display]` section of the demo device: an image-dir board."""
    return (
        f'[display]\nkind = "image-dir"\npath = "{frames}"\n'
        f"width = {BOARD[0]}\nheight = {BOARD[1]}\n"
    )


def programme_wav(path: Path, seconds: float) -> Path:
    """A 440 Hz programme with a slow swell, so it is easy to tell from the chime."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * PROGRAMME_HZ * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    pcm = np.round(x * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def place_in_cache(cache_dir: Path, src: Path, mime: str) -> dict[str, Any]:
    """Publish `src` into the agent's content-addressed cache (as `media.prefetch` would
    after a download); its MediaRef."""
    from agent.cache.store import MediaCache

    body = src.read_bytes()
    sha = hashlib.sha256(body).hexdigest()
    cache = MediaCache(cache_dir, 64 * 1024 * 1024, emit_event=lambda *_e: None)
    cache.ensure_dirs()
    tmp = cache.partial_dir / f"{sha}.demo"
    shutil.copyfile(src, tmp)
    cache.publish(sha, tmp)
    return {"url": "https://media.example.vn/ban-tin.wav", "sha256": sha, "size": len(body),
            "type": mime}  # fmt: skip


def tone_onsets(x: np.ndarray, hz: float, *, share: float = 0.5) -> np.ndarray:
    """Indices of 10 ms windows where `hz` carries at least `share` of the energy. Pure."""
    w = RATE // 100
    n = len(x) // w
    if n == 0:
        return np.zeros(0, dtype=int)
    blocks = x[: n * w].astype(np.float64).reshape(n, w)
    t = np.arange(w) / RATE
    ref = np.exp(-2j * np.pi * hz * t)
    tone = np.abs(blocks @ ref) ** 2 * 2 / w
    energy = np.sum(blocks**2, axis=1) + 1e-12
    return np.flatnonzero(tone / energy > share)


def runs(items: list[str | None]) -> list[str | None]:
    """Consecutive duplicates collapsed: what the board showed, in turn. Pure."""
    return [x for i, x in enumerate(items) if i == 0 or items[i - 1] != x]


def board_scene(
    sound: Any, pulse: Any, console: list[str], agent_dir: Path, frames: Path, repo: Path
) -> None:
    from display.imagedir import read_frames

    work = agent_dir / "media"
    work.mkdir(exist_ok=True)
    news = place_in_cache(
        agent_dir / "state" / "cache", programme_wav(work / "news.wav", 24.0), "audio/wav"
    )
    t0 = time.time() + 4.0
    start = datetime.fromtimestamp(t0, TZ).isoformat()
    texts = [
        "Lịch tiêm chủng: thứ Bảy tại trạm y tế xã",
        "Họp dân thôn Đông lúc 19 giờ tại nhà văn hoá",
        "Phòng chống dịch sốt xuất huyết: diệt lăng quăng",
        "ព័ត៌មានសំខាន់សម្រាប់ប្រជាពលរដ្ឋ",
    ]
    slides = [
        {"text": t, "duration_s": 5, "style": {"title": "UBND xã", "clock": True,
                                                "ticker": "Bản tin xã hôm nay"}}
        for t in texts
    ]  # fmt: skip
    schedule = {
        "version": 2,
        "items": [
            {"id": "ban-tin-chieu", "kind": "audio", "start": start, "priority": 20,
             "resume": "join", "media": [news]},
            {"id": "bang-tin", "kind": "slides", "start": start, "priority": 20,
             "resume": "join", "slides": slides},
        ],
    }  # fmt: skip
    recorder = sound.MonitorRecorder(pulse.full_env())
    recorder.start()
    try:
        subprocess.run(
            [*console, "send", "--device", "dev-0001", "schedule.set", "--args",
             json.dumps(schedule, ensure_ascii=False), "--wait-ack", "8"],
            cwd=repo, capture_output=True, check=False,
        )  # fmt: skip
        print("   programme (speaker) and slide loop (board) scheduled 4 s ahead", flush=True)
        time.sleep(max(0.0, t0 + 6.0 - time.time()))
        sent = time.time()
        alert = {
            "alert_id": "demo-lu-quet",
            "repeat": 1,
            "gap_s": 0,
            "text": "Khẩn cấp: lũ quét trên sông Bé. Người dân di chuyển lên vùng cao.",
        }
        subprocess.run(
            [*console, "send", "--device", "dev-0001", "alert.start", "--args",
             json.dumps(alert, ensure_ascii=False), "--wait-ack", "40"],
            cwd=repo, capture_output=True, check=False,
        )  # fmt: skip
        deadline = time.time() + 30
        while time.time() < deadline:
            shown = runs([line["item"] for line in read_frames(frames)])
            if "alert:demo-lu-quet" in shown and shown[-1] == "bang-tin":
                break
            time.sleep(0.2)
        time.sleep(3.0)  # the programme audible again
    finally:
        recorder.stop()
    lines = read_frames(frames)
    shown = runs([line["item"] for line in lines])
    print(f"   board showed, in turn: {' -> '.join(str(s) for s in shown)}", flush=True)
    x, t_rec = recorder.samples, recorder.start_wall
    board_at = next((line["t"] for line in lines if line["item"] == "alert:demo-lu-quet"), None)
    if t_rec is None or board_at is None:
        print("   the alert was not both heard and shown; see the agent log", flush=True)
        return
    chime = [i for i in tone_onsets(x, CHIME_HZ) if t_rec + i / 100 >= sent]
    if not chime:
        print("   no chime found in the recording", flush=True)
        return
    heard_at = t_rec + chime[0] / 100
    programme = set(tone_onsets(x, PROGRAMME_HZ).tolist())
    # Back to the programme: its tone for half a second on end (speech has brief 440 Hz).
    after = [
        i for i in sorted(programme)
        if t_rec + i / 100 > heard_at and all(i + k in programme for k in range(50))
    ]  # fmt: skip
    apart = 1000 * abs(heard_at - board_at)
    # `sent` is taken before the console process starts (Python start-up, TLS connect,
    # signing) and the alert is spoken text (rendered on arrival): the figure a user may
    # compare with the alert latency benchmark is how far apart the two outputs are.
    print(f"   alert: chime at the speaker {1000 * (heard_at - sent):.0f} ms, "
          f"on the board {1000 * (board_at - sent):.0f} ms after `tcs-central send` began "
          f"(its start-up and the speech rendering included): "
          f"{apart:.0f} ms apart (10 ms resolution)", flush=True)  # fmt: skip
    if after:
        print(f"   speaker back to its programme {t_rec + after[0] / 100 - heard_at:.1f} s "
              "after the chime", flush=True)  # fmt: skip
    print(f"   frames: {frames}/NNNNNN.png, what was shown when: {frames}/frames.jsonl",
          flush=True)  # fmt: skip
