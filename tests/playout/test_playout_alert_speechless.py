"""An alert whose speech fails altogether (issue 7 item 9): it still sounds and is
acked. A real agent, real espeak-ng (an unknown voice makes it exit 1: both the alert's
`lang` and the configured `tts_voice` are unknown here), heard at the null sink."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support.playout import (
    DEVICE,
    audible_spans,
    dominant_hz,
    place_in_cache,
    proofs,
    recording,
    ref_json,
    sound_agent,
)
from support.pulse import RATE, PulseRig, best_alignment, correlation, programme_signal, write_wav
from support.recorded import ALERT_TEXT

from playback.alert import CHIME_PAUSE_S
from playback.chime import TONE_S, TONES_HZ

NO_VOICE = 'tts_voice = "zz-nonesuch"\n'  # a voice espeak-ng does not have
CHIME_S = TONE_S * len(TONES_HZ)


def _speech_failed(done: dict[str, Any]) -> bool:
    return any(
        w.startswith("speech failed") and "'xx'" in w and "'zz-nonesuch'" in w
        for w in done.get("warnings") or []
    )


def _alert_proof(agent: Any, province: Any, alert_id: str) -> dict[str, Any]:
    (record,) = [p for p in proofs(agent, province) if p["alert_id"] == alert_id]
    return record


def test_playout_alert_speech_fails_chime_and_media_heard_done_with_warning(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    agent, province, _ = sound_agent(tmp_path / "a", broker, extra_audio=NO_VOICE)
    src = programme_signal(2.0)
    ref = place_in_cache(agent, write_wav(tmp_path / "flood.wav", src))
    with recording(agent, province, pulse) as rec:
        jti = province.send(DEVICE, "alert.start", {
            "alert_id": "flood-1", "text": ALERT_TEXT, "lang": "xx", "repeat": 2, "gap_s": 1.5,
            "media": [ref_json(ref)],
        })  # fmt: skip
        province.wait_ack(jti, status="accepted", timeout=30)
        done = province.wait_ack(jti, status="done", timeout=60)
        rec.wait_silence_after(time.time() + 0.2)
    assert _speech_failed(done), done
    record = _alert_proof(agent, province, "flood-1")
    assert record["outcome"] == "completed" and record["media_sha256"] == [ref.sha256]

    x = rec.samples
    spans = audible_spans(x, min_gap_s=1.0)  # chime, pause, media: one burst per repeat
    assert len(spans) == 2, spans
    for start, end in spans:
        a = round(start * RATE)
        assert abs(dominant_hz(x[a + 2400 : a + 24000]) - TONES_HZ[0]) < 10
        assert abs(dominant_hz(x[a + 31000 : a + 52000]) - TONES_HZ[1]) < 10
        # The media follows the chime and its pause (and nothing spoken after it).
        m = a + round((CHIME_S + CHIME_PAUSE_S) * RATE)
        window = x[m - RATE // 10 : m + len(src) + RATE // 10]
        at = best_alignment(window, src)
        assert correlation(window[at : at + len(src)], src) > 0.5
        assert abs(end - start - (CHIME_S + CHIME_PAUSE_S + 2.0)) < 0.1, spans


def test_playout_alert_text_only_speech_fails_chime_only_done_with_warning(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    agent, province, _ = sound_agent(tmp_path / "a", broker, extra_audio=NO_VOICE)
    with recording(agent, province, pulse) as rec:
        jti = province.send(DEVICE, "alert.start", {
            "alert_id": "flood-2", "text": ALERT_TEXT, "lang": "xx", "repeat": 2, "gap_s": 1.5,
        })  # fmt: skip
        province.wait_ack(jti, status="accepted", timeout=30)
        done = province.wait_ack(jti, status="done", timeout=60)
        rec.wait_silence_after(time.time() + 0.2)
    # Done, not failed: the chime did sound (docs/PROTOCOL-NOTES.md, "Alert speech").
    assert _speech_failed(done), done
    assert _alert_proof(agent, province, "flood-2")["outcome"] == "completed"
    x = rec.samples
    spans = audible_spans(x, min_gap_s=1.0)
    assert len(spans) == 2, spans
    for start, end in spans:
        a = round(start * RATE)
        assert abs(dominant_hz(x[a + 2400 : a + 24000]) - TONES_HZ[0]) < 10
        assert abs(end - start - CHIME_S) < 0.1, spans  # the chime alone, no speech
