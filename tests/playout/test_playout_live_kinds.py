"""The live relay (PROTOCOL §4 `live.start` / `live.stop`) for every kind of stream a
province sends, and an upstream that drops and comes back, heard at a real PulseAudio
null sink from a real agent relaying through VLC from real local servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.live_streams import (
    TONE_HZ,
    HlsStream,
    ToneStream,
    make_stream_tls,
    rms_db,
    samples,
    tone_purity,
    wait_heard_hz,
    wait_proofs,
)
from support.playout import DEVICE, audible_spans, dominant_hz, sound_agent, wait_online
from support.pulse import RATE, PulseRig
from support.recorded import recorded_agent, send_accepted, wait_sounded
from support.timing import poll

from playback.live import vlc_unavailable


@pytest.fixture(autouse=True)
def _vlc() -> None:
    if vlc_unavailable():
        pytest.skip(f"libVLC unusable here: {vlc_unavailable()}")


@pytest.fixture
def stream() -> Iterator[ToneStream]:
    s = ToneStream()
    yield s
    if not s.dead.is_set():
        s.kill()


def _stop(province: Any, live: str, session_id: str) -> dict[str, Any]:
    """live.stop; the `live.start` second ack, which must be `done` (never `failed`)."""
    stop = province.send(DEVICE, "live.stop", {"session_id": session_id})
    province.wait_ack(stop, status="done", timeout=10)
    acks = [
        m.json() for m in list(province.messages)
        if m.topic == f"tcs/v1/dev/{DEVICE}/ack" and m.json()["jti"] == live
    ]  # fmt: skip
    assert all(a["status"] != "failed" for a in acks), acks
    done: dict[str, Any] = province.wait_ack(live, status="done", timeout=10)
    return done


def _wait_silent(pulse: PulseRig, after: float, timeout: float) -> float:
    """Wall time by which the sink has been silent (< -50 dBFS) for 0.3 s, after `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = time.time()
        if now - 0.35 > after and rms_db(pulse, now - 0.35, now - 0.05) < -50:
            return now
    raise AssertionError(f"the sink never fell silent within {timeout:g} s")


def _assert_played_is_heard(pulse: PulseRig, p: dict[str, Any]) -> None:
    """A relay proof's played_ms is the time the sink heard between its start and end,
    within what VLC shows of its output: the relay counts from the first audio VLC hands
    to the device until the player has stopped, in monotonic time between polls (not in
    polls), whatever the load. Measured here: an HLS opening 0.15–0.3 s short (it counted
    from VLC's clock, which moves about a second after the sound starts, until that was
    found under load); an mp3 over http 0.5–0.9 s long (VLC resynchronises its first
    second through the sink's ALSA plugin, which cannot report its delay: a few clicks,
    then silence, while its clock runs)."""
    started, ended = _span(p)
    heard = sum(
        e - s for s, e in audible_spans(samples(pulse, started - 1, ended + 1), min_gap_s=0.1)
    )
    assert heard - 1.0 < p["played_ms"] / 1000 < heard + 1.0, (p["played_ms"], heard)


def _span(p: dict[str, Any]) -> tuple[float, float]:
    return (
        datetime.fromisoformat(p["started_at"]).timestamp(),
        datetime.fromisoformat(p["ended_at"]).timestamp(),
    )


def test_playout_live_reconnects_by_itself_after_an_outage(
    tmp_path: Path, broker: Any, pulse: PulseRig, stream: ToneStream
) -> None:
    """The upstream closes every connection and refuses new ones for a while, then comes
    back on the same port: the relay reopens it by itself, the tone is heard again, the
    session does not fail, and its proof counts only the time that sounded."""
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        live = send_accepted(
            province, "live.start", {"session_id": "radio-r", "url": stream.url}, timeout=20
        )
        t_heard = wait_heard_hz(pulse, TONE_HZ, timeout=30)
        wait_sounded(rec, 2.0, after=t_heard)  # it relays, steadily, for a while
        stream.kill()
        t_kill = time.time()
        # The outage is heard (VLC's buffer ran out) ...
        t_silent = _wait_silent(pulse, t_kill, timeout=30)
        # ... and lasts at least 2 s: the outage's length is the test's input (what the
        # relay must ride out), not a wait for the agent to do something.
        time.sleep(max(0.0, t_kill + 2.0 - time.time()))
        stream.restart()
        t_back = time.time()
        t_heard_again = wait_heard_hz(pulse, TONE_HZ, timeout=30)
        t_steady = wait_sounded(rec, 2.0, after=t_heard_again)
        assert abs(dominant_hz(samples(pulse, t_steady - 1.0, t_steady - 0.1)) - TONE_HZ) < 5
        done = _stop(province, live, "radio-r")
        (p,) = wait_proofs(agent, province, "radio-r", 1)
    assert stream.connections >= 2  # it really was a new connection
    assert t_heard_again > t_back > t_silent
    assert "live.stop" in (done["detail"] or "")
    assert "reconnect" in (done["detail"] or ""), done  # the operator sees the stream dropped
    assert p["kind"] == "live" and p["outcome"] == "cancelled" and p["reason"] == "live.stop"
    started, ended = _span(p)
    assert started < t_kill < t_back < ended
    # played_ms is the time that sounded.
    heard = sum(
        e - s for s, e in audible_spans(samples(pulse, started - 1, ended + 1), min_gap_s=0.1)
    )
    # Within what VLC's clock allows: on each opening it runs ~0.7 s ahead of the first
    # sample at the sink (output latency), and it was opened twice.
    assert heard - 0.5 < p["played_ms"] / 1000 < heard + 1.6, (p["played_ms"], heard)
    # The outage (≥ 2 s refused, then VLC's reopening) is not counted as played.
    assert p["played_ms"] / 1000 < (ended - started) - 1.5


def test_playout_live_hls(tmp_path: Path, broker: Any, pulse: PulseRig) -> None:
    """A live HLS channel (a sliding .m3u8 of 1 s AAC segments that ffmpeg writes in real
    time) is relayed: the tone is heard, steadily, until live.stop."""
    hls = HlsStream(tmp_path)
    try:
        hls.wait_segments(3)
        assert "#EXT-X-ENDLIST" not in (hls.dir / "live.m3u8").read_text()  # live, not VOD
        with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
            live = send_accepted(
                province, "live.start", {"session_id": "hls-1", "url": hls.url}, timeout=20
            )
            t_heard = wait_heard_hz(pulse, TONE_HZ, timeout=30)
            # Several segments and playlist reloads later (as the sink heard it):
            t_end = wait_sounded(rec, 4.0, after=t_heard)
            done = _stop(province, live, "hls-1")
            (p,) = wait_proofs(agent, province, "hls-1", 1)
            rec.wait_silence_after(_span(p)[1] + 1)
    finally:
        hls.close()
    assert "live.stop" in (done["detail"] or "")
    # Steady across segment boundaries: the tone in every half second, no dropouts.
    for a in np.arange(t_heard, t_end - 0.5, 0.5):
        x = samples(pulse, a, a + 0.5)
        assert abs(dominant_hz(x) - TONE_HZ) < 5 and rms_db(pulse, a, a + 0.5) > -20, a
    assert p["kind"] == "live" and p["outcome"] == "cancelled"
    _assert_played_is_heard(pulse, p)


def test_playout_live_icecast_metadata_never_reaches_the_speaker(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    """An Icecast-style server (icy-* headers; in-band `StreamTitle` blocks every
    ICY_METAINT bytes to a client that asks) addressed as icecast://: the tone is heard
    clean over the whole relay, however many metadata blocks went by."""
    stream = ToneStream(icy=True)
    url = stream.url.replace("http://", "icecast://")
    try:
        with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
            live = send_accepted(
                province, "live.start", {"session_id": "icy-1", "url": url}, timeout=20
            )
            t_heard = wait_heard_hz(pulse, TONE_HZ, timeout=30)
            # Relayed for 5 s as the sink heard it, and VLC asked for metadata and got
            # it in-band (every ICY_METAINT bytes: 2.5 blocks a second at 1.25× pace).
            t_end = wait_sounded(rec, 5.0, after=t_heard)
            poll(lambda: stream.metadata_blocks >= 8, timeout=60)
            _stop(province, live, "icy-1")
            (p,) = wait_proofs(agent, province, "icy-1", 1)
            rec.wait_silence_after(_span(p)[1] + 1)
    finally:
        stream.kill()
    # ...and none of it was played: every 0.25 s holds the pure tone and nothing else
    # (a block decoded as audio is a click or a burst, spread over the whole spectrum).
    quarter = RATE // 4
    x = samples(pulse, t_heard, t_end)
    purities = [tone_purity(x[i : i + quarter]) for i in range(0, len(x) - quarter, quarter)]
    assert len(purities) >= 16
    assert min(purities) > 0.99, purities
    assert p["kind"] == "live" and p["outcome"] == "cancelled"
    _assert_played_is_heard(pulse, p)


def test_playout_live_https_signed_by_the_province_ca(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    """An https stream whose certificate a province's own CA signed plays once that CA
    is the device's `[audio] live_ca_file` (the system trust store is not touched)."""
    tls = make_stream_tls(tmp_path / "tls")
    stream = ToneStream(tls=tls)
    agent, province, _ = sound_agent(
        tmp_path / "a", broker, extra_audio=f'live_ca_file = "{tls.ca}"\n'
    )
    rec = pulse.recorder
    rec.start()
    try:
        with agent:
            wait_online(province)
            live = send_accepted(
                province, "live.start", {"session_id": "tls-1", "url": stream.url}, timeout=20
            )
            t_heard = wait_heard_hz(pulse, TONE_HZ, timeout=30)
            t_end = wait_sounded(rec, 3.0, after=t_heard)
            done = _stop(province, live, "tls-1")
            (p,) = wait_proofs(agent, province, "tls-1", 1)
        rec.wait_silence_after(_span(p)[1] + 1)
        rec.stop()
    finally:
        stream.kill()
    assert stream.url.startswith("https://") and stream.connections == 1
    assert "live.stop" in (done["detail"] or "")
    x = samples(pulse, t_heard, t_end)
    assert abs(dominant_hz(x) - TONE_HZ) < 5 and tone_purity(x) > 0.99
    assert p["kind"] == "live" and p["outcome"] == "cancelled"
    _assert_played_is_heard(pulse, p)


def test_playout_live_https_untrusted_is_refused_with_a_reason(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    """Without the province CA the same server is not trusted: nothing is requested over
    that connection, nothing sounds, and the operator is told why, at once (`failed`,
    `tls_untrusted`), rather than after reconnects as a `stream_lost`."""
    stream = ToneStream(tls=make_stream_tls(tmp_path / "tls"))
    try:
        with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
            live = send_accepted(
                province, "live.start", {"session_id": "tls-2", "url": stream.url}, timeout=20
            )
            t_accepted = time.time()
            failed = province.wait_ack(live, status="failed", timeout=30)
            t_failed = time.time()
            (p,) = wait_proofs(agent, province, "tls-2", 1)
            rec.wait_silence_after(t_failed + 0.3)
            log = agent.output()
    finally:
        stream.kill()
    assert failed["code"] == "tls_untrusted", failed
    assert "live_ca_file" in (failed["detail"] or ""), failed
    # At once: no back-off and reconnects for a certificate (counted, not timed).
    assert "reconnect" not in (failed["detail"] or ""), failed
    assert "reconnect" not in log and "restarting in" not in log, log[-2000:]
    assert stream.connections == 0  # no GET was ever sent to the untrusted server
    assert rms_db(pulse, t_accepted, t_failed + 0.3) < -50
    assert p["kind"] == "live" and p["outcome"] == "failed" and p["reason"] == "tls_untrusted"
    assert p["started_at"] is None and p["played_ms"] == 0
