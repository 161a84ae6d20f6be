"""A real agent with a speaker (PulseAudio null sink, recorded) and a board (image-dir):
slides never sound and audio never shows; an alert reaches both within 100 ms of each
other, measured from the recording and frames.jsonl; both return to their programmes."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from support.agentproc import Province
from support.boards import black_sha, frames, poll
from support.playout import (
    DEVICE,
    TZ,
    item_at,
    place_in_cache,
    proofs,
    recording,
    set_schedule,
    sound_agent,
)
from support.pulse import RATE, PulseRig, programme_signal, write_wav
from support.recorded import ALERT_TEXT, send_accepted
from support.timing import align_near

from playback.chime import TONE_S, TONES_HZ, tone

SIZE = (320, 180)


def board_agent(tmp_path: Path, broker: Any) -> tuple[Any, Province, Path]:
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    folder = tmp_path / "frames"
    text = agent.config.read_text()
    board = (
        f'[display]\nkind = "image-dir"\npath = "{folder}"\nwidth = {SIZE[0]}\nheight = {SIZE[1]}\n'
    )
    assert '[display]\nkind = "none"\n' in text
    agent.config.write_text(text.replace('[display]\nkind = "none"\n', board))
    return agent, province, folder


def slides_at(item_id: str, at: float, n: int, each_s: float) -> dict[str, Any]:
    return {
        "id": item_id, "kind": "slides", "window_s": 60, "priority": 20,
        "start": datetime.fromtimestamp(at, TZ).isoformat(),
        "slides": [
            {"text": f"Bản tin {i + 1}: ặ ễ Ữ ỗ", "duration_s": each_s, "style": {"title": "UBND"}}
            for i in range(n)
        ],
    }  # fmt: skip


def items_shown(folder: Path) -> list[str | None]:
    shown = [line["item"] for line in frames(folder)]
    return [x for i, x in enumerate(shown) if i == 0 or shown[i - 1] != x]


def test_playout_board_agent_speaker_and_board(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    agent, province, folder = board_agent(tmp_path, broker)
    news = place_in_cache(agent, write_wav(tmp_path / "news.wav", programme_signal(20.0)))
    with recording(agent, province, pulse) as rec:
        t0 = time.time() + 4.0
        set_schedule(
            province,
            [slides_at("notice", t0, 4, 5.0), item_at("news", news, t0 + 1.5, resume="join")],
        )
        poll(lambda: "notice" in items_shown(folder), timeout=30)
        # Both programmes running: the news heard at the sink.
        poll(lambda: rec.first_audible(-45, after=t0 + 1.4), timeout=30)
        jti = send_accepted(
            province, "alert.start",
            {"alert_id": "storm", "text": ALERT_TEXT, "repeat": 1, "gap_s": 0}, timeout=30,
        )  # fmt: skip
        province.wait_ack(jti, status="done", timeout=60)
        poll(lambda: items_shown(folder)[-1] == "notice", timeout=30)
        poll(lambda: [p["outcome"] for p in proofs(agent, province) if p.get("item_id") == "news"]
             == ["preempted", "resumed"], timeout=60)  # fmt: skip
        hb = province.wait_for(lambda m: m.topic == f"tcs/v1/dev/{DEVICE}/hb", timeout=90)
        rec.wait_silence_after(time.time())
    x = rec.samples
    lines = frames(folder)

    # Slides never sound: silence from the slides' start until the news begins.
    a, b = rec.index_of(t0 + 0.1), rec.index_of(t0 + 1.4)
    assert float(np.max(np.abs(x[a:b]))) < 10 ** (-50 / 20)
    # Audio never shows: only the idle card, the notice and the alert were on the board.
    assert set(items_shown(folder)) <= {None, "notice", "alert:storm"}
    assert items_shown(folder).count("alert:storm") == 1
    assert black_sha(SIZE) not in {line["sha256"] for line in lines}

    # The alert on both within 100 ms: its first frame vs its chime's first sample.
    shown_at = next(line["t"] for line in lines if line["item"] == "alert:storm")
    chime = tone(TONES_HZ[0], TONE_S, RATE)
    index, corr = align_near(x, chime, rec.index_of(shown_at), search=RATE)
    assert corr > 0.9, corr
    heard_at = rec.wall_of(index)
    print(f"alert: board first frame {shown_at:.3f}, chime at the sink {heard_at:.3f}, "
          f"speaker - board = {1000 * (heard_at - shown_at):+.0f} ms")  # fmt: skip
    assert abs(heard_at - shown_at) <= 0.100, heard_at - shown_at

    # Each returned to its own programme: the board shows the notice again, the news
    # resumed (proofs above), and the board's proofs are slides, the speaker's audio.
    records = proofs(agent, province)
    notice = [p for p in records if p.get("item_id") == "notice"]
    assert notice and all(p["kind"] == "slides" and p["id"].startswith("board/") for p in notice)
    assert all(p["kind"] == "audio" for p in records if p.get("item_id") == "news")
    display = json.loads(hb.payload)["display"]
    assert display["ok"] and display["kind"] == "image-dir" and display["power"] == "on"
