"""Faults: a hung decoder, a hung player, the output device pulled and put back."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from support.engine import Events, make_engine
from support.pulse import PulseRig, programme_signal, write_wav
from support.timing import poll, until

from playback.decode import DecodeError, decode_to_pcm
from playback.engine import AudioEngine, Voice
from playback.prepared import Prepared

RATE = 48000
pytestmark = pytest.mark.timeout(90)


async def play_recorded_then_stop(eng: AudioEngine, prepared: Prepared, pulse: PulseRig) -> Voice:
    """Play `prepared` to its end with the sink recorded, then stop the engine."""
    pulse.recorder.start()
    voice = eng.play(prepared)
    await asyncio.wait_for(voice.done, 5)
    await eng.stop()
    pulse.recorder.wait_silence_after(time.time())
    pulse.recorder.stop()
    return voice


def processes_with(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_hung_decoder_is_killed_at_its_deadline_and_reported(tmp_path: Path) -> None:
    src = write_wav(tmp_path / "a.wav", programme_signal(0.2))
    marker = f"tcs-hung-decoder-{os.getpid()}"
    # A decoder that never finishes (its child sleeps too: the whole group must die).
    hung = ("sh", "-c", f"sleep 30 & sleep 31; : {marker} {{src}} {{dst}}")

    async def main() -> None:
        with pytest.raises(DecodeError) as ei:
            await decode_to_pcm(src, tmp_path / "pcm", rate=RATE, channels=1, timeout_s=1.0,
                                command=hung)  # fmt: skip
        # Killed by its deadline (a decoder that ended by itself would not say so).
        assert ei.value.code == "decoder_timeout" and "killed after 1 s" in str(ei.value)

    asyncio.run(main())
    poll(lambda: processes_with(marker) == [])  # the whole group is killed, then reaped
    assert not list((tmp_path / "pcm").glob("*"))  # nothing half-written left in the cache


def test_broken_media_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"not audio at all" * 100)

    async def main() -> None:
        with pytest.raises(DecodeError) as ei:
            await decode_to_pcm(bad, tmp_path / "pcm", rate=RATE, channels=1, timeout_s=20)
        assert ei.value.code == "decoder_failed" and "bad.mp3" in str(ei.value)
        with pytest.raises(DecodeError, match="media_missing"):
            await decode_to_pcm(tmp_path / "nope.wav", tmp_path / "pcm", rate=RATE, channels=1)

    asyncio.run(main())


def test_output_device_pulled_and_restored(pulse: PulseRig, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "p.wav", programme_signal(4.0))
    short = write_wav(tmp_path / "s.wav", programme_signal(0.5, seed=9))

    async def main() -> None:
        events = Events()
        eng = make_engine(tmp_path, events, retry_s=0.5, watchdog_s=1.0)
        await eng.start()
        long_p, short_p = await eng.prepare(wav), await eng.prepare(short)
        voice = eng.play(long_p)
        await until(lambda: voice.first_sample_wall is not None, "first sample")
        await asyncio.sleep(0.5)
        pulse.server.kill()  # the card is gone
        await until(lambda: "audio_device_lost" in events.codes(), "device lost event")
        assert eng.status().ok is False and eng.status().device is None
        await asyncio.wait_for(voice.done, 5)
        assert voice.outcome == "failed" and voice.reason == "output_unavailable"
        assert 300 <= voice.played_ms < 4000
        # Asking to play while it is gone fails at once, clearly.
        v2 = eng.play(short_p)
        await asyncio.wait_for(v2.done, 2)
        assert (v2.outcome, v2.reason) == ("failed", "output_unavailable")

        pulse.server.start()  # plugged back in
        await until(lambda: eng.status().ok, "device back")
        assert events.codes() == ["audio_device_lost", "audio_device_restored"]
        v3 = await play_recorded_then_stop(eng, short_p, pulse)
        assert v3.outcome == "completed"
        assert pulse.recorder.first_audible(-30) is not None  # sound really came out again

    asyncio.run(main())


def test_hung_player_is_killed_and_restarted(pulse: PulseRig, tmp_path: Path) -> None:
    short = write_wav(tmp_path / "s.wav", programme_signal(0.4))

    async def main() -> None:
        events = Events()
        eng = make_engine(tmp_path, events, retry_s=0.3, watchdog_s=1.0)
        await eng.start()
        prepared = await eng.prepare(short)
        proc = eng._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)  # the player freezes (stuck in a driver call)
        await until(
            lambda: events.codes() == ["audio_device_lost", "audio_device_restored"],
            "the frozen player killed and restarted",
        )
        assert proc.returncode == -signal.SIGKILL
        v = await play_recorded_then_stop(eng, prepared, pulse)
        assert v.outcome == "completed"
        assert np.max(np.abs(pulse.recorder.samples)) > 0.1

    asyncio.run(main())


def test_missing_device_name_is_reported_and_none_means_no_audio(
    pulse: PulseRig, tmp_path: Path
) -> None:
    async def main() -> None:
        events = Events()
        eng = AudioEngine("USB Audio", RATE, tmp_path / "pcm", emit_event=events, retry_s=5)
        await eng.start()
        assert eng.status().ok is False
        assert events.items[0][1] == "audio_device_lost"
        assert "no output device matches 'USB Audio'" in events.items[0][2]
        await eng.stop()
        none = AudioEngine("none", RATE, tmp_path / "pcm", emit_event=events)
        await none.start()
        assert none.status().ok is False and len(events.items) == 1
        await none.stop()

    asyncio.run(main())
