"""The demo's sound figures (scripts/demo_sound.py): what it prints must match the sound."""

from __future__ import annotations

import numpy as np
from support.pulse import load_demo_sound as _demo_sound


def test_playout_demo_sound_measures_seconds_and_peak() -> None:
    ds = _demo_sound()
    rate = ds.RATE
    t = np.arange(int(2.5 * rate)) / rate
    x = np.zeros(5 * rate, dtype=np.float32)
    x[rate : rate + t.size] = (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    heard = ds.measure(x)
    assert abs(heard.seconds - 2.5) < 0.03
    assert abs(heard.peak_dbfs - 20 * np.log10(0.25)) < 0.1
    line = ds.summary(heard, {"verdict": "VERIFIED"})
    assert line == "alert heard: 2.5 s of sound, peak -12 dBFS, proof verified"


def test_playout_demo_sound_says_silence_and_forgery() -> None:
    ds = _demo_sound()
    silent = ds.measure(np.zeros(ds.RATE, dtype=np.float32))
    assert silent.peak_dbfs is None
    assert ds.summary(silent, None) == (
        "alert NOT heard: silence at the null sink, no proof received"
    )
    loud = ds.measure(np.full(ds.RATE, 0.5, dtype=np.float32))
    assert ds.summary(loud, {"verdict": "FORGED"}).endswith("proof FORGED")
