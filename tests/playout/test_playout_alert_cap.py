"""`alert.cap` whose audio travels inside the CAP (`derefUri`, PROTOCOL §5.4): decoded
into the media cache and heard at a real PulseAudio null sink, from a real agent."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from support.capdoc import cap, info, resource
from support.fake_output import FakeOutput
from support.media_cache import Events, payload
from support.playout import DEVICE, audible_spans, dominant_hz, proofs
from support.pulse import RATE, PulseRig, programme_signal, write_wav
from support.recorded import recorded_agent

from agent.cache.store import MediaCache
from agent.config import AlertsConfig
from agent.dispatch import Outcome, Result
from agent.model import AlertCap
from agent.playout.coordinator import AlertCoordinator
from agent.playout.handlers import PlayoutHandlers
from agent.playout.runner import Playout, PlayoutDeps
from agent.protocol import Command
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


# ---- in process: the handler, a real cache, a recording fake speaker ----------------


def _cap_in_process(
    cache_dir: Path, quota: int, audio: bytes
) -> tuple[Outcome, Result | None, MediaCache, FakeOutput]:
    """Handle one `alert.cap` carrying `audio` (plus a headline) on a device whose
    cache quota is `quota` bytes; its first outcome, its second ack, the cache."""
    cache = MediaCache(cache_dir, quota, emit_event=Events(), reserve_bytes=0)
    cache.recover()
    speaker = FakeOutput("speaker", ["audio"], test_what="speaker", alert_s=0.2)

    async def media_path(sha: str) -> Path | None:
        return await asyncio.to_thread(cache.path_for, sha)

    async def proof(_record: dict[str, Any]) -> None:
        return None

    async def main() -> tuple[Outcome, Result | None]:
        lp = Playout(PlayoutDeps(
            output=speaker, tz=ZoneInfo("Asia/Ho_Chi_Minh"), media_path=media_path,
            proof=proof, load_state=lambda: None, save_state=lambda _t: None,
        ))  # fmt: skip
        await lp.start()
        handlers = PlayoutHandlers(
            AlertCoordinator([lp], media_path, wall=time.time), AlertsConfig(),
            wall=time.time, inline_media=cache,
        )  # fmt: skip
        xml = cap(infos=info(resources=resource(audio)))
        cmd = Command(
            jti="j1", cmd="alert.cap", iss="vn-48", aud=DEVICE, iat=0, exp=0, kid="k",
            topic="t", token_digest="0" * 64, args=AlertCap(xml=xml), priority=100,
            warnings=(),
        )  # fmt: skip
        try:
            outcome = await handlers.alert_cap(cmd)
            result = None if outcome.later is None else await outcome.later
        finally:
            await lp.stop()
        return outcome, result

    outcome, result = asyncio.run(main())
    speaker.assert_clean()
    return outcome, result, cache, speaker


def test_playout_alert_cap_deref_above_max_media_size_is_bad_args(tmp_path: Path) -> None:
    audio = payload(20_000)
    outcome, result, cache, speaker = _cap_in_process(tmp_path / "c", 10_000, audio)
    assert (outcome.status, outcome.code) == ("failed", "bad_args"), outcome
    assert outcome.detail is not None and "max media size" in outcome.detail
    assert result is None and speaker.labels() == []
    assert not cache.has(hashlib.sha256(audio).hexdigest())


def test_playout_alert_cap_deref_is_cached_and_handed_to_the_output(tmp_path: Path) -> None:
    audio = payload(20_000)
    outcome, result, cache, speaker = _cap_in_process(tmp_path / "c", 1 << 20, audio)
    assert outcome.status == "accepted" and result is not None and result.ok, result
    assert result.warnings == [], result  # no "not in the cache; not played"
    assert cache.path_for(hashlib.sha256(audio).hexdigest()) is not None
    assert speaker.labels() == ["alert:cap:kttv@danang.gov.vn:VN-48-2026-0042"]


def test_playout_alert_cap_deref_that_cannot_be_stored_leaves_the_text(tmp_path: Path) -> None:
    # Within the max media size, but the quota has no room left beside it: the audio
    # is left out with a warning and the alert still sounds its text.
    audio = payload(9_000)
    outcome, result, cache, speaker = _cap_in_process(tmp_path / "c", 10_000, audio)
    assert outcome.status == "accepted" and result is not None and result.ok, result
    assert any("could not be cached" in w for w in result.warnings), result
    assert not cache.has(hashlib.sha256(audio).hexdigest())
    assert speaker.labels() == ["alert:cap:kttv@danang.gov.vn:VN-48-2026-0042"]
