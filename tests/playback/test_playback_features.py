"""Pre-emption, volume, emergency programme, TTS cache, monitor and self-test, at the sink."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from support.pulse import PulseRig, write_wav
from support.timing import until

from playback.alert import build_alert, play_alert
from playback.chime import TONE_S, TONES_HZ, tone
from playback.engine import AudioEngine
from playback.levels import rms_dbfs
from playback.monitor import LevelMonitor
from playback.selftest import test_tone
from playback.tts import render_speech

RATE = 48000
pytestmark = pytest.mark.timeout(90)


def no_events(level: str, code: str, detail: str) -> None:
    raise AssertionError(f"unexpected event {code}: {detail}")


def amplitude_at(x: npt.NDArray[np.float32], freq: float) -> float:
    """Amplitude of the `freq` component of x (least-squares sine fit)."""
    t = np.arange(len(x)) / RATE
    s, c = np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)
    return float(2 * np.hypot(x @ s, x @ c) / len(x))


def test_preemption_switches_within_a_buffer_without_overlap(
    pulse: PulseRig, tmp_path: Path
) -> None:
    a = write_wav(tmp_path / "a.wav", tone(440, 3.0, RATE, level=0.3))
    b = write_wav(tmp_path / "b.wav", tone(1000, 1.0, RATE, level=0.8))
    rec = pulse.recorder

    async def main() -> None:
        eng = AudioEngine("pulse", RATE, tmp_path / "pcm", emit_event=no_events)
        await eng.start()
        pa, pb = await eng.prepare(a), await eng.prepare(b)
        rec.start()
        va = eng.play(pa)
        # A has sounded half a second (by the engine's own account of its first sample).
        await until(
            lambda: va.first_sample_wall is not None and time.time() > va.first_sample_wall + 0.5,
            "A sounding",
        )
        asked = time.time()
        vb = eng.play(pb)  # as soon as possible: pre-empts A
        await asyncio.wait_for(vb.done, 5)
        await eng.stop()
        rec.wait_silence_after(time.time())
        rec.stop()
        assert va.outcome == "preempted" and vb.outcome == "completed"
        assert vb.first_sample_wall is not None and va.ended_wall is not None
        # The switch is one 5 ms crossfade on the output's own clock (how soon after the
        # ask is bench/bench_latency_floor.py's business: a loaded machine may be slow).
        assert vb.first_sample_wall > asked
        assert va.ended_wall - vb.first_sample_wall == pytest.approx(0.005, abs=0.001)
        x = rec.samples
        loud = np.flatnonzero(np.abs(x) > 0.5)
        b_start = int(loud[0])
        assert abs(rec.wall_of(b_start) - vb.first_sample_wall) < 0.05
        before = x[b_start - 4800 : b_start - 240]
        after = x[b_start + 480 : b_start + 24000]
        assert amplitude_at(before, 440) == pytest.approx(0.3, abs=0.02)
        assert amplitude_at(after, 440) < 0.005  # A is gone once B plays
        assert amplitude_at(after, 1000) == pytest.approx(0.8, abs=0.02)

    asyncio.run(main())


def test_master_and_item_volume_scale_what_is_heard_emergency_ignores_master(
    pulse: PulseRig, tmp_path: Path
) -> None:
    src = tone(500, 0.6, RATE, level=0.5)
    wav = write_wav(tmp_path / "t.wav", src)
    rec = pulse.recorder

    async def main() -> None:
        eng = AudioEngine("pulse", RATE, tmp_path / "pcm", emit_event=no_events)
        await eng.start()
        p = await eng.prepare(wav)
        eng.set_master(0.5)
        rec.start()
        t0 = time.time() + 0.3
        v1 = eng.play(p, at_wall=t0, gain=0.5)  # item 50 % × master 50 %
        v2 = eng.play(p, at_wall=t0 + 1.0, gain=0.5, use_master=False)  # emergency
        await asyncio.wait_for(v2.done, 5)
        await eng.stop()
        rec.wait_silence_after(time.time())
        rec.stop()
        x = rec.samples
        i1, i2 = rec.index_of(t0), rec.index_of(t0 + 1.0)
        heard1 = rms_dbfs(x[i1 + 2400 : i1 + 24000])
        heard2 = rms_dbfs(x[i2 + 2400 : i2 + 24000])
        ref = rms_dbfs(src[2400:24000])
        assert heard1 == pytest.approx(ref - 12.04, abs=0.3)
        assert heard2 == pytest.approx(ref - 6.02, abs=0.3)
        assert v1.level_dbfs is not None and v2.level_dbfs is not None
        assert v2.level_dbfs - v1.level_dbfs == pytest.approx(6.02, abs=0.05)

    asyncio.run(main())


def test_emergency_programme_chime_text_repeats_gap(pulse: PulseRig, tmp_path: Path) -> None:
    rec = pulse.recorder
    text = "Thông báo khẩn cấp."

    async def main() -> None:
        eng = AudioEngine("pulse", RATE, tmp_path / "pcm", emit_event=no_events)
        await eng.start()
        eng.set_master(0.05)  # a quiet evening: the alert must still be full volume
        prog = await build_alert(eng, text=text, repeat=2, gap_s=0.5, chime=True)
        speech = await eng.prepare_text(text)
        once = 2 * TONE_S + 0.4 + speech.duration_s
        assert prog.duration_s == pytest.approx(2 * once + 0.5, abs=1e-3)
        rec.start()
        v = play_alert(eng, prog, volume=100)
        await asyncio.wait_for(v.done, prog.duration_s + 5)
        await eng.stop()
        rec.wait_silence_after(time.time())
        rec.stop()
        assert v.outcome == "completed" and v.first_sample_wall is not None
        x = rec.samples
        s0 = rec.index_of(v.first_sample_wall)
        for rep in range(2):
            c = s0 + round(rep * (once + 0.5) * RATE)
            ding = x[c + 2400 : c + 24000]
            dong = x[c + 31200 : c + 52800]
            assert amplitude_at(ding, TONES_HZ[0]) == pytest.approx(0.5, abs=0.03)  # no master
            assert amplitude_at(dong, TONES_HZ[1]) == pytest.approx(0.5, abs=0.03)
            spoken = x[c + round((2 * TONE_S + 0.4) * RATE) :][: round(speech.duration_s * RATE)]
            assert rms_dbfs(spoken) > -30  # the Vietnamese voice speaks
        gap_start = s0 + round((once + 0.05) * RATE)
        assert np.max(np.abs(x[gap_start : gap_start + round(0.4 * RATE)])) < 1e-3

    asyncio.run(main())


def test_speech_is_rendered_once_and_cached(tmp_path: Path) -> None:
    async def main() -> None:
        path, key = await render_speech("Xin chào bà con", tmp_path, voice="vi")
        assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"RIFF"
        # A second call must not run espeak-ng at all: give it one that cannot run.
        again, key2 = await render_speech("Xin chào bà con", tmp_path, voice="vi",
                                          espeak=str(tmp_path / "no-such-espeak"))  # fmt: skip
        assert (again, key2) == (path, key)
        other, key3 = await render_speech("Xin chào bà con", tmp_path, voice="vi-vn-x-south")
        assert key3 != key and other != path
        with pytest.raises(ValueError, match="empty"):
            await render_speech("  ", tmp_path)

    asyncio.run(main())


def test_speaker_self_test_reports_sent_and_heard_levels(pulse: PulseRig, tmp_path: Path) -> None:
    async def main() -> None:
        eng = AudioEngine("pulse", RATE, tmp_path / "pcm", emit_event=no_events)
        mon = LevelMonitor("pulse", RATE)
        await eng.start()
        mon.start()
        assert await mon.wait_ready(), mon.last_error
        result = await test_tone(eng, mon, volume=60)
        await mon.stop()
        await eng.stop()
        assert result.ok, result.detail
        assert result.level_dbfs is not None and result.heard_dbfs is not None
        # 0.5 sine at volume 60 (gain 0.36): -3.01 - 6.02 - 8.87 dBFS, heard through the loop.
        assert result.level_dbfs == pytest.approx(-17.9, abs=0.2)
        assert result.heard_dbfs == pytest.approx(result.level_dbfs, abs=1.0)

    asyncio.run(main())


def test_speaker_self_test_fails_when_the_monitor_hears_nothing(
    pulse: PulseRig, tmp_path: Path
) -> None:
    async def main() -> None:
        eng = AudioEngine("pulse", RATE, tmp_path / "pcm", emit_event=no_events)
        await eng.start()
        eng.set_master(1.0)
        mon = LevelMonitor("pulse", RATE)
        mon.start()
        assert await mon.wait_ready(), mon.last_error
        # The amplifier is "off": the voice is sent at volume 0, the monitor hears silence.
        result = await test_tone(eng, mon, volume=0)
        await mon.stop()
        await eng.stop()
        assert not result.ok and "did not hear" in result.detail

    asyncio.run(main())
