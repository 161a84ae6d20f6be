"""Sound commands end to end: a real agent, a real broker, a private PulseAudio null sink.

Covers what tests/playout/test_playout_alert.py does not: CAP (`alert.cap`), the
speaker self-test, an alert updated by `alert_id`, `until`, and the output device
pulled and put back while an alert plays.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.agentproc import Msg, Province
from support.playout import DEVICE, audible_spans, dominant_hz, proofs
from support.pulse import RATE, PulseRig, Recorder
from support.recorded import (
    ALERT_TEXT,
    recorded_agent,
    start_long_alert,
    wait_audible,
    wait_sounded,
)

from agent.timeutil import parse_rfc3339

CAP_DIR = Path("/work/shared/data/cap")
AMBER = CAP_DIR / "09_amber_alert_two_languages.xml"
MALICIOUS = CAP_DIR / "10_MALICIOUS_xxe_xinclude_test.xml"
AMBER_ID = "cap:KARO@CLETS.DOJ.CA.GOV:KAR0-0306112239-SW"
# A Cancel of the Amber alert above (CAP 1.2 `references` = sender,identifier,sent).
AMBER_CANCEL = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
    "<identifier>KAR0-0306112239-SW-C</identifier><sender>KARO@CLETS.DOJ.CA.GOV</sender>"
    "<sent>2003-06-11T23:00:00-07:00</sent><status>Actual</status><msgType>Cancel</msgType>"
    "<scope>Public</scope>"
    "<references>KARO@CLETS.DOJ.CA.GOV,KAR0-0306112239-SW,2003-06-11T22:39:00-07:00</references>"
    "</alert>"
)


def _on(topic: str) -> Any:
    def pred(m: Msg) -> bool:
        return m.topic == f"tcs/v1/dev/{DEVICE}/{topic}"

    return pred


def _last_sound_wall(rec: Recorder) -> float:
    spans = audible_spans(rec.samples)
    assert spans, "nothing was heard at the null sink"
    return rec.wall_of(round(spans[-1][1] * RATE))


def _event(province: Province, code: str, timeout: float) -> dict[str, Any]:
    msg = province.wait_for(lambda m: _on("event")(m) and m.json().get("code") == code, timeout)
    event: dict[str, Any] = msg.json()
    return event


def _heartbeat_after(province: Province, t: float, timeout: float = 10) -> dict[str, Any]:
    msg = province.wait_for(lambda m: _on("hb")(m) and m.at > t, timeout)
    hb: dict[str, Any] = msg.json()
    return hb


def test_playout_e2e_cap_heard_cancelled_and_bad_cap_refused(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        # The XXE/XInclude document never gets past verification.
        bad = province.send(DEVICE, "alert.cap", {"xml": MALICIOUS.read_text()})
        rejected = province.wait_ack(bad, status="rejected", timeout=15)
        assert rejected["code"] == "bad_args"
        # A Draft is well-formed CAP but never played: accepted, then failed bad_args.
        draft = AMBER.read_text().replace("<status>Actual</status>", "<status>Draft</status>")
        dj = province.send(DEVICE, "alert.cap", {"xml": draft})
        province.wait_ack(dj, status="accepted", timeout=15)
        refused = province.wait_ack(dj, status="failed", timeout=15)
        assert refused["code"] == "bad_args" and "Draft" in (refused["detail"] or "")

        # The real Amber alert: no Vietnamese info, so the first (English) one is spoken.
        amber_sent = time.time()
        jti = province.send(DEVICE, "alert.cap", {"xml": AMBER.read_text()})
        first = province.wait_ack(jti, status="accepted", timeout=15)
        assert any("'vi'" in w for w in first.get("warnings") or []), first
        heard = wait_audible(rec)
        # The refused ones never sounded: the first sound came after the real one was sent.
        assert heard > amber_sent, "a refused CAP made a sound"
        wait_sounded(rec, 3.0, after=heard)
        cancel = province.send(DEVICE, "alert.cap", {"xml": AMBER_CANCEL})
        cancelled_at = time.time()
        province.wait_ack(cancel, status="accepted", timeout=10)
        province.wait_ack(cancel, status="done", timeout=10)
        done = province.wait_ack(jti, status="done", timeout=10)
        province.wait_for(_on("proof"), timeout=10)
        (record,) = [p for p in proofs(agent, province) if p.get("alert_id") == AMBER_ID]
        ended = parse_rfc3339(record["ended_at"]).timestamp()
        rec.wait_silence_after(ended + 1.5)  # would the alert go on, it would be heard
    assert "stopped (cap_cancel)" in (done["detail"] or ""), done
    assert record["kind"] == "alert" and record["outcome"] == "cancelled"
    # It sounded (chime at 880 Hz first), for as long as the proof says ...
    a = rec.index_of(heard)
    assert abs(dominant_hz(rec.samples[a + 2400 : a + 24000]) - 880) < 10
    last = _last_sound_wall(rec)
    assert 2500 < record["played_ms"] < (last - heard) * 1000 + 300, (record, last - heard)
    # ... and went quiet when the agent ended it for the Cancel (which was sent after 3 s
    # of sound, long before the alert's own end).
    assert cancelled_at < ended and last < ended + 0.3, (cancelled_at, ended, last)


def test_playout_e2e_speaker_test_tone_heard(tmp_path: Path, broker: Any, pulse: PulseRig) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (_agent, province, rec):
        jti = province.send(DEVICE, "test.run", {"what": "speaker"})
        province.wait_ack(jti, status="accepted", timeout=15)
        done = province.wait_ack(jti, status="done", timeout=20)
        rec.wait_silence_after(time.time() + 0.3)
        display = province.send(DEVICE, "test.run", {"what": "display"})
        province.wait_ack(display, status="accepted", timeout=10)
        no_display = province.wait_ack(display, status="failed", timeout=10)
    assert "dBFS" in (done["detail"] or ""), done
    assert no_display["code"] == "not_supported"
    (span,) = audible_spans(rec.samples)
    # The self-test is a 1 kHz tone of about a second.
    assert 0.8 < span[1] - span[0] < 1.3, span
    a, b = round(span[0] * RATE), round(span[1] * RATE)
    assert abs(dominant_hz(rec.samples[a:b]) - 1000) < 10


def test_playout_e2e_alert_update_replaces_playing_one(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        old = start_long_alert(province, rec, "flood-2")
        wait_sounded(rec, 1.0, after=wait_audible(rec))
        # The update: same id, one repeat, no chime, quieter.
        new = province.send(
            DEVICE, "alert.start",
            {"alert_id": "flood-2", "text": "Nước đã rút", "repeat": 1, "chime": False,
             "volume": 40},
        )  # fmt: skip
        province.wait_ack(new, status="accepted", timeout=15)
        old_done = province.wait_ack(old, status="done", timeout=15)
        new_done = province.wait_ack(new, status="done", timeout=30)
        deadline = time.monotonic() + 10
        while len(proofs(agent, province)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        rec.wait_silence_after(time.time() + 0.5)
        finished_at = time.time()
    assert "stopped" in (old_done["detail"] or ""), old_done
    assert "played 1×" in (new_done["detail"] or ""), new_done
    records = sorted(
        (p for p in proofs(agent, province) if p["alert_id"] == "flood-2"),
        key=lambda p: p["started_at"],
    )
    assert [p["outcome"] for p in records] == ["cancelled", "completed"], records
    assert records[1]["volume"] == 40
    # 20 repeats would last a minute; the update's single short message ended it.
    assert _last_sound_wall(rec) < finished_at
    assert records[1]["played_ms"] < 5000


def test_playout_e2e_alert_until_stops_it(tmp_path: Path, broker: Any, pulse: PulseRig) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        until = datetime.now(UTC) + timedelta(seconds=6)
        stamp = until.isoformat(timespec="milliseconds")
        jti = start_long_alert(province, rec, "wind-3", timeout=15, until=stamp)
        done = province.wait_ack(jti, status="done", timeout=15)
        province.wait_for(_on("proof"), timeout=10)
        rec.wait_silence_after(time.time() + 1.0)
        # An `until` already past is refused outright.
        past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat(timespec="milliseconds")
        late = province.send(
            DEVICE, "alert.start", {"alert_id": "wind-4", "text": ALERT_TEXT, "until": past}
        )
        # Long-running: accepted first, the verdict as the second ack (§6.3).
        assert province.wait_ack(late, status="accepted", timeout=10)
        expired = province.wait_ack(late, status="failed", timeout=10)
    assert "stopped (until)" in (done["detail"] or ""), done
    (record,) = [p for p in proofs(agent, province) if p["alert_id"] == "wind-3"]
    assert record["outcome"] == "cancelled"
    last = _last_sound_wall(rec)
    # Up to the end (a 1 s gap between repeats may fall just before it), not a moment after.
    assert until.timestamp() - 2.5 < last < until.timestamp() + 0.5, (last, until.timestamp())
    assert expired["code"] == "expired", expired


def test_playout_e2e_device_pulled_and_restored(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    with recorded_agent(tmp_path, broker, pulse) as (agent, province, rec):
        jti = start_long_alert(province, rec, "pull-1")
        rec.stop()
        pulse.server.kill()  # the sound card is pulled mid-alert
        lost = _event(province, "audio_device_lost", timeout=20)
        assert lost["level"] == "error"
        failed = province.wait_ack(jti, status="failed", timeout=20)
        t = time.time()
        province.send(DEVICE, "status.request")
        hb = _heartbeat_after(province, t)
        assert hb["audio"]["ok"] is False, hb["audio"]

        pulse.server.start()  # put back
        _event(province, "audio_device_restored", timeout=30)
        rec.start()
        again = province.send(
            DEVICE, "alert.start", {"alert_id": "pull-2", "text": ALERT_TEXT, "repeat": 1}
        )
        province.wait_ack(again, status="accepted", timeout=15)
        province.wait_ack(again, status="done", timeout=30)
        rec.wait_silence_after(time.time() + 0.3)
        t = time.time()
        province.send(DEVICE, "status.request")
        hb2 = _heartbeat_after(province, t)
    assert failed["code"], failed
    assert hb2["audio"]["ok"] is True, hb2["audio"]
    # The next alert is heard on the restored device.
    assert audible_spans(rec.samples), "nothing heard after the device came back"
    outcomes = {p["alert_id"]: p["outcome"] for p in proofs(agent, province)}
    assert outcomes.get("pull-2") == "completed", outcomes
