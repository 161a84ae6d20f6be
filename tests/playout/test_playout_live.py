"""live.start / live.stop through VLC, heard at a real PulseAudio null sink from a real
agent relaying a real (local, paced, endless) HTTP MP3 stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from support.live_streams import (
    TONE_HZ,
    ToneStream,
    hz_around,
    rms_db,
    wait_heard_hz,
    wait_proofs,
)
from support.playout import DEVICE, place_in_cache, proofs, ref_json, sound_agent, wait_online
from support.pulse import RATE, PulseRig, write_wav
from support.recorded import recorded_agent, send_accepted

from playback.live import vlc_unavailable

PROGRAMME_HZ = 660.0


@pytest.fixture
def stream() -> Iterator[ToneStream]:
    if vlc_unavailable():
        pytest.skip(f"libVLC unusable here: {vlc_unavailable()}")
    s = ToneStream()
    try:
        yield s
    finally:
        if not s.dead.is_set():
            s.kill()


def test_playout_live_relay_alert_preempts_and_stop(
    tmp_path: Any, broker: Any, pulse: PulseRig, stream: ToneStream
) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        live = send_accepted(
            province, "live.start", {"session_id": "radio-1", "url": stream.url}, timeout=20
        )
        # The stream's tone is what the speaker plays.
        wait_heard_hz(pulse, TONE_HZ, timeout=30)

        alert = province.send(
            DEVICE, "alert.start", {"alert_id": "storm", "text": "Bão", "repeat": 1}
        )
        province.wait_ack(alert, status="done", timeout=30)
        t_alert_done = time.time()
        # After the alert the relay comes back by itself.
        wait_heard_hz(pulse, TONE_HZ, timeout=30)

        stop = province.send(DEVICE, "live.stop", {"session_id": "radio-1"})
        province.wait_ack(stop, status="done", timeout=10)
        done = province.wait_ack(live, status="done", timeout=10)
        t_stop = time.time()
        # Silence after live.stop (nothing scheduled): a second of it, once recorded.
        pulse.recorder.wait_silence_after(t_stop + 1.5)
        assert rms_db(pulse, t_stop + 0.5, t_stop + 1.4) < -50
        wait_proofs(agent, province, "radio-1", 2)
    assert "live.stop" in (done["detail"] or "")
    recs = proofs(agent, province)
    lives = [p for p in recs if p.get("session_id") == "radio-1"]
    assert [p["outcome"] for p in lives] == ["preempted", "cancelled"], lives
    for p in lives:
        assert p["kind"] == "live" and p["started_at"] and p["ended_at"]
        assert p["played_ms"] > 500  # each segment was heard for a while
    (alert_proof,) = [p for p in recs if p.get("alert_id") == "storm"]
    assert alert_proof["outcome"] == "completed"
    # While the alert sounded the relay was silent: the chime (880 Hz), not the tone.
    started = datetime.fromisoformat(alert_proof["started_at"]).timestamp()
    ended = datetime.fromisoformat(alert_proof["ended_at"]).timestamp()
    assert started < ended <= t_alert_done
    assert abs(hz_around(pulse, started + 0.3, 0.2) - 880) < 10
    # The tone is not underneath the alert: no 440 Hz line in the alert's spectrum.
    rec = pulse.recorder
    x = rec.samples[rec.index_of(started) : rec.index_of(ended)]
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    hz = np.fft.rfftfreq(len(x), 1 / RATE)
    near = spec[(hz > TONE_HZ - 3) & (hz < TONE_HZ + 3)].max()
    assert near < 0.2 * spec.max()


def test_playout_live_stream_dies_reconnects_then_fails(
    tmp_path: Any, broker: Any, pulse: PulseRig, stream: ToneStream
) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, _rec):
        live = send_accepted(
            province, "live.start", {"session_id": "radio-2", "url": stream.url}, timeout=20
        )
        wait_heard_hz(pulse, TONE_HZ, timeout=30)
        stream.kill()
        t_kill = time.time()
        failed = province.wait_ack(live, status="failed", timeout=40)
        t_failed = time.time()
        wait_proofs(agent, province, "radio-2", 1)
    assert failed["code"] == "stream_lost"
    # Reconnect attempts with back-off took a while before giving up.
    assert t_failed - t_kill > 3.0
    (p,) = [p for p in proofs(agent, province) if p.get("session_id") == "radio-2"]
    assert p["kind"] == "live" and p["outcome"] == "failed" and p["reason"] == "stream_lost"
    assert p["played_ms"] > 1500


def test_playout_live_dies_and_the_programme_plays_on(
    tmp_path: Any, broker: Any, pulse: PulseRig, stream: ToneStream
) -> None:
    """Fallback: a live relay pre-empts the scheduled programme; when its stream dies for
    good, the programme comes back where the clock says (`join`)."""
    t = np.arange(round(60 * RATE)) / RATE
    programme = (0.3 * np.sin(2 * np.pi * PROGRAMME_HZ * t)).astype(np.float32)
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    ref = place_in_cache(agent, write_wav(tmp_path / "programme.wav", programme))
    rec = pulse.recorder
    rec.start()
    with agent:
        wait_online(province)
        at = datetime.now(UTC) + timedelta(seconds=2)
        item = {
            "id": "programme", "kind": "audio", "media": [ref_json(ref)],
            "start": at.isoformat(), "window_s": 90, "priority": 20, "resume": "join",
        }  # fmt: skip
        province.wait_ack(province.send(DEVICE, "schedule.set", {"version": 1, "items": [item]}))
        wait_heard_hz(pulse, PROGRAMME_HZ, timeout=30)
        live = send_accepted(
            province, "live.start", {"session_id": "radio-3", "url": stream.url}, timeout=20
        )
        wait_heard_hz(pulse, TONE_HZ, timeout=30)  # live pre-empted it
        stream.kill()
        province.wait_ack(live, status="failed", timeout=40)
        wait_heard_hz(pulse, PROGRAMME_HZ, timeout=30)  # and it is back
    rec.stop()
    outcomes = [p["outcome"] for p in proofs(agent, province) if p.get("item_id") == "programme"]
    assert outcomes and outcomes[0] == "preempted", outcomes
