"""The demo's board report (scripts/demo_board.py): what it prints must match the sound
and the frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.scripts import load_script

from playback.chime import chime_samples


def test_demo_board_tells_chime_from_programme(tmp_path: Path) -> None:
    db = load_script("demo_board")
    import wave

    path = db.programme_wav(tmp_path / "p.wav", 1.0)
    with wave.open(str(path)) as w:
        programme = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32767
    chime = chime_samples(db.RATE)
    x = np.concatenate([programme, chime, np.zeros(db.RATE // 2, np.float32)])
    first_chime = db.tone_onsets(x, db.CHIME_HZ)[0]
    assert first_chime == 100  # after 1.0 s of programme = 100 windows of 10 ms
    assert len(db.tone_onsets(x[: db.RATE], db.PROGRAMME_HZ)) == 100
    assert len(db.tone_onsets(x[-db.RATE // 2 :], db.PROGRAMME_HZ)) == 0  # silence


def test_demo_board_runs() -> None:
    db = load_script("demo_board")
    assert db.runs([None, None, "a", "a", "alert:x", "a"]) == [None, "a", "alert:x", "a"]
