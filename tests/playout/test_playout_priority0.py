"""PROTOCOL §3 (2026-12-01): nothing a priority-0 command does may interrupt what
sounds. A real agent on the null sink, a province alert sounding, and the commune's
key (`test.run` allowed, max priority 49) asking for a speaker test."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from support.agentproc import AgentProc, Province, TrustKey
from support.playout import DEVICE, audible_spans, dominant_hz, proofs, recording
from support.pulse import PulseRig, Recorder
from support.recorded import ALERT_TEXT, send_accepted, wait_audible

RATE = 48000


def pulse_agent(tmp_path: Path, broker: Any, *more: TrustKey) -> tuple[AgentProc, Province]:
    """An agent on the null sink with the province's emergency key (and `more` keys)."""
    province_key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEVICE, ["vn-48"], [province_key, *more])
    text = agent.config.read_text()
    agent.config.write_text(text.replace('output = "none"\n', 'output = "pulse"\n'))
    return agent, Province(broker, province_key)


def alert_sounding(province: Province, rec: Recorder) -> str:
    """A province alert (two repeats of a sentence), accepted and heard; its jti."""
    jti = send_accepted(
        province, "alert.start",
        {"alert_id": "flood", "text": ALERT_TEXT, "repeat": 2, "gap_s": 1}, timeout=30,
    )  # fmt: skip
    wait_audible(rec)
    return jti


def test_playout_priority0_test_run_waits_for_the_alert(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    commune = TrustKey("vn-48-490-20194", commands=("schedule.set", "test.run"), max_priority=49)
    agent, province = pulse_agent(tmp_path, broker, commune)
    with recording(agent, province, pulse) as rec:
        alert = alert_sounding(province, rec)
        test = province.send(DEVICE, "test.run", {"what": "speaker"}, key=commune)
        province.wait_ack(test, status="accepted", timeout=15)
        alert_done = province.wait_ack(alert, status="done", timeout=120)
        test_done = province.wait_ack(test, status="done", timeout=120)
        province.wait_for(lambda m: m.topic.endswith("/proof"), timeout=30)
        rec.wait_silence_after(time.time() + 0.3)
        (proof,) = [p for p in proofs(agent, province) if p.get("alert_id") == "flood"]
    assert "played 2×" in (alert_done["detail"] or ""), alert_done
    assert proof["outcome"] == "completed", proof
    assert "tone played" in (test_done["detail"] or ""), test_done
    # The 1 kHz tone is the last thing heard, and it began after the alert's last sample.
    spans = audible_spans(rec.samples)
    start_s, end_s = spans[-1]
    a, b = round(start_s * RATE), round(end_s * RATE)
    assert abs(dominant_hz(rec.samples[a:b]) - 1000) < 10
    alert_end = datetime.fromisoformat(proof["ended_at"]).timestamp()
    assert rec.wall_of(a) >= alert_end - 0.02


def test_playout_priority0_agent_restart_waits_for_the_alert_then_exits_for_systemd(
    tmp_path: Path, broker: Any, pulse: PulseRig, monkeypatch: Any
) -> None:
    """`agent.restart` (priority 0) lets a sounding emergency finish; under systemd it
    then exits (75) for systemd to start the agent again, config check first."""
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")  # what systemd sets
    agent, province = pulse_agent(tmp_path, broker)
    with recording(agent, province, pulse) as rec:
        alert = alert_sounding(province, rec)
        restart = province.send(DEVICE, "agent.restart", {})
        province.wait_ack(restart, status="accepted", timeout=15)
        alert_done = province.wait_ack(alert, status="done", timeout=120)
        assert agent.proc is not None
        code = agent.proc.wait(60)
        province.wait_for(lambda m: m.topic.endswith("/proof"), timeout=30)
        (proof,) = [p for p in proofs(agent, province) if p.get("alert_id") == "flood"]
    assert code == 75
    assert "played 2×" in (alert_done["detail"] or ""), alert_done
    assert proof["outcome"] == "completed", proof
