"""Acoustic verification (`[audio] monitor`) and the heartbeat during a live relay.

The private null sink's monitor source is a perfect "microphone": made PulseAudio's
default source, PortAudio's input device "pulse" hears exactly what the agent sent.
Muting the sink is a dead amplifier: the tone is still sent, nothing is heard.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from support.agentproc import Msg, Province
from support.live_streams import ToneStream
from support.playout import DEVICE, proofs, recording, sound_agent, wait_online
from support.pulse import SINK, PulseRig
from support.recorded import wait_audible, wait_sounded
from support.timing import poll

from agent.timeutil import parse_rfc3339

MONITOR = 'monitor = "pulse"\n'


def _pactl(pulse: PulseRig, *args: str) -> None:
    subprocess.run(["pactl", *args], env=pulse.env, check=True, timeout=10, capture_output=True)


def _alert_proof(agent: Any, province: Province, alert_id: str) -> dict[str, Any]:
    jti = province.send(DEVICE, "alert.start", {"alert_id": alert_id, "text": "Bão", "repeat": 1})
    province.wait_ack(jti, status="done", timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [p for p in proofs(agent, province) if p.get("alert_id") == alert_id]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no proof for alert {alert_id}")


def _events(province: Province) -> list[dict[str, Any]]:
    topic = f"tcs/v1/dev/{DEVICE}/event"
    return [m.json() for m in list(province.messages) if m.topic == topic]


def test_playout_monitor_hears_what_was_sent_and_not_when_muted(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    _pactl(pulse, "set-default-source", f"{SINK}.monitor")
    agent, province, _ = sound_agent(tmp_path / "a", broker, extra_audio=MONITOR)
    with agent:
        wait_online(province)
        loud = _alert_proof(agent, province, "heard-1")
        test = province.send(DEVICE, "test.run", {"what": "speaker"})
        heard_test = province.wait_ack(test, status="done", timeout=20)

        _pactl(pulse, "set-sink-mute", SINK, "1")  # the amplifier died
        test = province.send(DEVICE, "test.run", {"what": "speaker"})
        muted_test = province.wait_ack(test, status="failed", timeout=20)
        muted = _alert_proof(agent, province, "heard-2")
    assert not [e for e in _events(province) if e["code"] == "monitor_unavailable"]

    # What the monitor heard is what was sent (the sink's monitor is lossless).
    assert loud["outcome"] == "completed"
    assert abs(loud["heard_dbfs"] - loud["level_dbfs"]) < 2.0, loud
    # The speaker test's ack says what was heard, close to what was sent.
    detail = heard_test["detail"] or ""
    sent = float(detail.split("level ")[1].split(" dBFS")[0])
    heard = float(detail.split("heard ")[1].split(" dBFS")[0])
    assert abs(heard - sent) < 2.0, detail

    # Muted: the tone was sent but not heard, and the test says so.
    assert muted_test["code"] == "not_heard", muted_test
    assert "level -" in (muted_test["detail"] or "")
    assert muted["outcome"] == "completed"
    assert muted["heard_dbfs"] < muted["level_dbfs"] - 40, muted


def test_playout_monitor_unavailable_warns_and_proofs_omit_heard(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    agent, province, _ = sound_agent(
        tmp_path / "a", broker, extra_audio='monitor = "no-such-microphone"\n'
    )
    with agent:
        wait_online(province)
        proof = _alert_proof(agent, province, "unheard")
        test = province.send(DEVICE, "test.run", {"what": "speaker"})
        unverified = province.wait_ack(test, status="done", timeout=20)
        province.wait_for(
            lambda m: m.topic.endswith("/event") and m.json()["code"] == "monitor_unavailable",
            timeout=5,
        )
    (ev,) = [e for e in _events(province) if e["code"] == "monitor_unavailable"]
    assert ev["level"] == "warning" and "no-such-microphone" in ev["detail"]
    assert proof["outcome"] == "completed" and proof["level_dbfs"] > -40
    assert "heard_dbfs" not in proof
    # The speaker is not blamed for a broken monitor; the ack says it was not verified.
    assert "monitor unavailable" in (unverified["detail"] or ""), unverified


def test_playout_monitor_live_relay_in_heartbeat_and_heard(
    tmp_path: Path,
    broker: Any,
    pulse: PulseRig,
    stream: ToneStream,
) -> None:
    _pactl(pulse, "set-default-source", f"{SINK}.monitor")
    agent, province, _ = sound_agent(tmp_path / "a", broker, extra_audio=MONITOR)
    with recording(agent, province, pulse) as rec:
        live = province.send(
            DEVICE, "live.start", {"session_id": "radio-hb", "url": stream.url, "priority": 30}
        )
        province.wait_ack(live, status="accepted", timeout=20)
        # VLC buffers before it sounds: ask once the sink has heard the relay a while.
        wait_sounded(rec, 2.5, after=wait_audible(rec))
        t_ask = time.time()
        province.send(DEVICE, "status.request", {})
        hb = province.wait_for(lambda m: _hb_after(m, t_ask), timeout=10).json()
        stop = province.send(DEVICE, "live.stop", {"session_id": "radio-hb"})
        province.wait_ack(live, status="done", timeout=10)
        province.wait_ack(stop, status="done", timeout=10)
        # Once the relay's session is done, the very next heartbeat says nothing plays.
        t_after = time.time()
        province.send(DEVICE, "status.request", {})
        after = province.wait_for(lambda m: _hb_after(m, t_after), timeout=10).json()
        relayed = poll(lambda: [p for p in proofs(agent, province) if p.get("session_id")])
    playing = hb["playing"]
    assert playing is not None, hb
    assert playing["item_id"] == "radio-hb" and playing["kind"] == "live"
    assert playing["priority"] == 30
    assert playing["since"] < hb["at"]
    assert after["playing"] is None, after
    # VLC sends no level of its own: what the monitor heard is the relay's only level
    # (the stream's tone is a sine at 0.3 of full scale, about -13.5 dBFS).
    (proof,) = relayed
    assert proof["outcome"] == "cancelled" and proof["level_dbfs"] is None
    assert proof["played_ms"] > 1500, proof
    assert -25 < proof["heard_dbfs"] < -8, proof


def _hb_after(m: Msg, wall: float) -> bool:
    """A heartbeat the agent built after `wall` (same machine, same clock; its `at` is
    to the millisecond)."""
    return m.topic.endswith("/hb") and parse_rfc3339(m.json()["at"]).timestamp() >= wall - 0.001
