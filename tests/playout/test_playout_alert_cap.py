"""`alert.cap` whose audio travels inside the CAP (`derefUri`, PROTOCOL §5.4): decoded
into the media cache and heard at a real PulseAudio null sink, from a real agent."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from support.capdoc import cap, info, resource
from support.playout import DEVICE, audible_spans, dominant_hz, proofs
from support.pulse import RATE, PulseRig, programme_signal, write_wav
from support.recorded import recorded_agent

from playback.alert import CHIME_PAUSE_S
from playback.chime import TONE_S, TONES_HZ

CHIME_S = TONE_S * len(TONES_HZ)


def test_playout_alert_cap_deref_audio_is_heard(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    # 2 s at 16 kHz (64 KB, 85 KB of base64) keeps the CAP under its 200 KiB bound.
    wav = write_wav(tmp_path / "voice.wav", programme_signal(2.0, rate=16000), rate=16000)
    body = wav.read_bytes()
    sha = hashlib.sha256(body).hexdigest()
    # A CAP `size` that disagrees is reported, not fatal (the JWS authenticates it).
    res = resource(body, size=str(len(body) + 1), digest=hashlib.sha1(body).hexdigest())
    xml = cap(infos=info(headline="", description="", instruction="", resources=res))
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        jti = province.send(DEVICE, "alert.cap", {"xml": xml})
        accepted = province.wait_ack(jti, status="accepted", timeout=30)
        done = province.wait_ack(jti, status="done", timeout=60)
        rec.wait_silence_after(time.time() + 0.2)
    assert any("CAP size" in w for w in accepted.get("warnings") or []), accepted
    assert not any("not played" in w for w in done.get("warnings") or []), done
    alert_id = "cap:kttv@danang.gov.vn:VN-48-2026-0042"
    (record,) = [p for p in proofs(agent, province) if p["alert_id"] == alert_id]
    assert record["outcome"] == "completed" and record["media_sha256"] == [sha]
    # The cache holds the bytes under their SHA-256, as if they had been downloaded.
    stored = agent.config.parent / "state" / "cache" / sha[:2] / sha
    assert stored.read_bytes() == body

    x = rec.samples
    spans = audible_spans(x, min_gap_s=1.0)
    assert len(spans) == 3, spans  # §5.3 defaults: 3 repeats of chime, pause, the audio
    for start, end in spans:
        a = round(start * RATE)
        assert abs(dominant_hz(x[a + 2400 : a + 24000]) - TONES_HZ[0]) < 10
        m = a + round((CHIME_S + CHIME_PAUSE_S + 0.2) * RATE)
        assert abs(dominant_hz(x[m : m + RATE]) - 330) < 10  # the CAP's own audio
        assert abs(end - start - (CHIME_S + CHIME_PAUSE_S + 2.0)) < 0.1, spans
