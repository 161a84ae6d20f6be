"""alert.start / alert.stop heard at a real PulseAudio null sink, from a real agent."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from support.agentproc import Msg
from support.playout import (
    DEVICE,
    audible_spans,
    dominant_hz,
    proofs,
)
from support.pulse import RATE, PulseRig
from support.recorded import (
    ALERT_TEXT,
    recorded_agent,
    send_accepted,
    start_long_alert,
    wait_audible,
    wait_sounded,
)


def _is_proof(m: Msg) -> bool:
    return m.topic == f"tcs/v1/dev/{DEVICE}/proof"


def test_playout_alert_chime_speech_repeat_and_proof(
    tmp_path: Any, broker: Any, pulse: PulseRig
) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        jti = send_accepted(
            province, "alert.start",
            {"alert_id": "storm-9", "text": ALERT_TEXT, "repeat": 2, "gap_s": 1.5, "volume": 50},
            timeout=30,
        )  # fmt: skip
        done = province.wait_ack(jti, status="done", timeout=40)
        proof_msg = province.wait_for(_is_proof, timeout=10)
        rec.wait_silence_after(time.time() + 0.2)
    assert "played" in (done["detail"] or "")
    (record,) = [p for p in proofs(agent, province) if p["alert_id"] == "storm-9"]
    assert proof_msg is not None
    assert record["kind"] == "alert" and record["outcome"] == "completed"
    assert record["scheduled_at"] is None and record["volume"] == 50
    assert record["level_dbfs"] is not None and -40 < record["level_dbfs"] < 0

    x = rec.samples
    spans = audible_spans(x, min_gap_s=1.0)
    # Two repeats separated by the 1.5 s gap: exactly two bursts of sound.
    assert len(spans) == 2, spans
    gap = spans[1][0] - spans[0][1]
    assert 1.3 < gap < 1.9, spans
    for start, end in spans:
        # Each burst opens with the chime: 880 Hz, then 660 Hz ...
        a = round(start * RATE)
        assert abs(dominant_hz(x[a + 2400 : a + 24000]) - 880) < 10
        assert abs(dominant_hz(x[a + 31000 : a + 52000]) - 660) < 10
        # ... and goes on with speech (more than a second of it after chime + pause).
        assert end - start > 1.6 + 1.0
    # Volume 50 is applied: the chime's -6 dBFS peak comes out well below that.
    a = round(spans[0][0] * RATE)
    peak = float(np.max(np.abs(x[a : a + 24000])))
    assert 0.05 < peak < 0.3
    # The proof's times are the sound's times.
    started = record["started_at"]
    assert started is not None
    heard = rec.first_audible(-45)
    assert heard is not None and abs(heard - _wall(started)) < 0.05


def test_playout_alert_stop_ends_sound(tmp_path: Any, broker: Any, pulse: PulseRig) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        jti = start_long_alert(province, rec, "fire-1")
        heard = wait_audible(rec)
        wait_sounded(rec, 1.0, after=heard)
        stop_jti = province.send(DEVICE, "alert.stop", {"alert_id": "fire-1"})
        stopped_at = time.time()
        province.wait_ack(stop_jti, status="done", timeout=10)
        done = province.wait_ack(jti, status="done", timeout=10)
        province.wait_for(_is_proof, timeout=10)
        (record,) = [p for p in proofs(agent, province) if p["alert_id"] == "fire-1"]
        ended = _wall(record["ended_at"])
        rec.wait_silence_after(ended + 1.5)  # would the alert go on, it would be heard
    assert "stopped" in (done["detail"] or "")
    assert record["outcome"] == "cancelled"
    # Nothing was heard once the agent ended it for the stop (20 repeats would last a
    # minute), and the proof counts what sounded.
    last = rec.wall_of(round(audible_spans(rec.samples)[-1][1] * RATE))
    assert stopped_at < ended and last < ended + 0.3, (stopped_at, ended, last)
    assert 800 < record["played_ms"] < (last - heard) * 1000 + 300, (record, last - heard)


def _wall(text: str) -> float:
    from agent.timeutil import parse_rfc3339

    return parse_rfc3339(text).timestamp()
