"""The engine proven at the speaker: what reached PulseAudio's null sink, recorded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from support.engine import Events, make_engine
from support.pulse import (
    PulseRig,
    best_alignment,
    correlation,
    envelope,
    programme_signal,
    write_mp3,
    write_wav,
)

from playback.levels import rms_dbfs

RATE = 48000
pytestmark = pytest.mark.timeout(90)


def test_scheduled_wav_plays_whole_on_time_and_proof_matches_recording(
    pulse: PulseRig, tmp_path: Path
) -> None:
    src = programme_signal(2.0)
    wav = write_wav(tmp_path / "news.wav", src)
    rec = pulse.recorder

    async def main() -> None:
        events = Events()
        eng = make_engine(tmp_path, events)
        await eng.start()
        assert eng.status().ok and eng.status().device == "pulse"
        prepared = await eng.prepare(wav)
        rec.start()
        at = time.time() + 0.6
        voice = eng.play(prepared, at_wall=at, gain=0.5)
        await asyncio.wait_for(voice.done, 10)
        await eng.stop()
        rec.wait_silence_after(at + 2.3)
        rec.stop()

        assert voice.outcome == "completed"
        assert voice.first_sample_wall is not None and voice.ended_wall is not None
        x = rec.samples
        i = best_alignment(x, src * 0.5)
        heard = x[i : i + len(src)]
        # Whole and correct: the waveform matches sample for sample.
        assert correlation(heard, src) > 0.99
        assert len(heard) == len(src)
        assert np.max(np.abs(x[i + len(src) + 2400 :]), initial=0.0) < 1e-3  # nothing after
        # Audible start vs the scheduled time and vs the engine's own proof time.
        heard_at = rec.wall_of(i)
        assert abs(heard_at - at) < 0.020, f"heard {1000 * (heard_at - at):.1f} ms off schedule"
        assert abs(voice.first_sample_wall - heard_at) < 0.050
        assert abs(voice.ended_wall - rec.wall_of(i + len(src))) < 0.050
        assert voice.played_ms == 2000
        # level_dbfs is the RMS of what was sent: the source at gain 0.5 (-6.02 dB).
        assert voice.level_dbfs == pytest.approx(rms_dbfs(src) - 6.02, abs=0.1)
        assert voice.level_dbfs == pytest.approx(rms_dbfs(heard), abs=0.2)
        assert events.items == []

    asyncio.run(main())


def test_mp3_plays_whole(pulse: PulseRig, tmp_path: Path) -> None:
    src = programme_signal(2.5, seed=3)
    mp3 = write_mp3(tmp_path / "spot.mp3", src)
    rec = pulse.recorder

    async def main() -> None:
        eng = make_engine(tmp_path, Events())
        await eng.start()
        prepared = await eng.prepare([mp3], ["ab" * 32])
        assert prepared.duration_s == pytest.approx(2.5, abs=0.08)  # lame pads a little
        rec.start()
        voice = eng.play(prepared, at_wall=time.time() + 0.3)
        await asyncio.wait_for(voice.done, 10)
        await eng.stop()
        rec.wait_silence_after(time.time() + 0.2)
        rec.stop()
        assert voice.outcome == "completed"
        x = rec.samples
        i = best_alignment(x, src)
        heard = x[i : i + len(src)]
        assert correlation(envelope(heard), envelope(src)) > 0.9
        assert correlation(heard, src) > 0.9  # 128 kbit/s MP3 keeps the waveform too

    asyncio.run(main())
