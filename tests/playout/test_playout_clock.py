"""Wall-clock steps and an offline reboot, through a real agent heard at the null sink.

The agent and its player subprocess see a wall clock shifted by
`tests/support/clockshift` (an NTP-like step: CLOCK_MONOTONIC is untouched); the test
process, the recorder and the broker keep the real clock. Times in proofs and in
schedules are therefore on the agent's clock; the recording is on the real one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support.agentclock import AgentClock
from support.agentproc import AgentProc, Msg
from support.playout import (
    DEVICE,
    audible_spans,
    item_at,
    place_in_cache,
    proofs,
    recording,
    set_schedule,
    sound_agent,
    verified_proof,
)
from support.pulse import RATE, PulseRig, programme_signal, write_wav
from support.timing import align_near

from agent.db import open_db
from agent.outbox import Outbox
from agent.timeutil import parse_rfc3339

PROOF_TOPIC = f"tcs/v1/dev/{DEVICE}/proof"


def _siren(seconds: float) -> npt.NDArray[np.float32]:
    """A rising sweep: unlike `programme_signal` (one chord whatever the seed), it
    cannot be mistaken for the news programme in the recording."""
    t = np.arange(round(seconds * RATE)) / RATE
    f0, f1 = 600.0, 1200.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    x = 0.3 * np.sin(phase) + 0.03 * np.random.default_rng(11).standard_normal(len(t))
    fade = RATE // 100
    x[:fade] *= np.linspace(0, 1, fade)
    x[-fade:] *= np.linspace(1, 0, fade)
    return x.astype(np.float32)


def _tone(seconds: float, hz: float = 1000.0) -> npt.NDArray[np.float32]:
    """A pure tone: neither the news chord nor the siren's sweep."""
    t = np.arange(round(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * hz * t)
    fade = RATE // 100
    x[:fade] *= np.linspace(0, 1, fade)
    x[-fade:] *= np.linspace(1, 0, fade)
    return x.astype(np.float32)


def _item_proofs(agent: AgentProc, province: Any, item_id: str) -> list[dict[str, Any]]:
    return [p for p in proofs(agent, province) if p.get("item_id") == item_id]


def _heard_at(
    x: npt.NDArray[np.float32], rec: Any, src: npt.NDArray[np.float32], real_wall: float
) -> float:
    """Real wall time where `src`'s first second is heard near `real_wall` (corr > 0.9)."""
    i, c = align_near(x, src[:RATE], rec.index_of(real_wall), RATE // 2)
    assert c > 0.9, f"not heard near {real_wall:.3f} (correlation {c:.2f})"
    return float(rec.wall_of(i))


def test_playout_backward_jump_never_plays_twice(
    tmp_path: Path, broker: Any, pulse: PulseRig, agent_clock: AgentClock
) -> None:
    src = programme_signal(2.0)
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    ref = place_in_cache(agent, write_wav(tmp_path / "news.wav", src))
    marker = place_in_cache(agent, write_wav(tmp_path / "marker.wav", _tone(0.5)))
    with recording(agent, province, pulse) as rec:
        at = float(int(agent_clock.now()) + 4)
        # The marker plays once the agent's clock has passed `at` a second time: the
        # positive event after which a replay of the news would have been heard.
        set_schedule(province, [item_at("news", ref, at), item_at("marker", marker, at + 8)])
        province.wait_for(lambda _m: len(_item_proofs(agent, province, "news")) >= 1, 20)
        played_real = at - agent_clock.offset
        # Back by 10 s (the clock was fast): the agent's clock is before `at` again, and
        # passes it again a few seconds later. (The step size does not matter to the
        # ledger; a small one keeps the test short.)
        assert not _item_proofs(agent, province, "marker"), "the marker played before the step"
        agent_clock.step(-10.0)
        assert agent_clock.now() < at
        again_real = at - agent_clock.offset
        marker_real = at + 8 - agent_clock.offset
        province.wait_for(lambda _m: bool(_item_proofs(agent, province, "marker")), 40)
        rec.wait_silence_after(marker_real + 1.0)
        log = agent.output()
    assert "wall clock stepped by -10" in log
    news = _item_proofs(agent, province, "news")
    assert [p["outcome"] for p in news] == ["completed"], news
    assert abs(parse_rfc3339(news[0]["started_at"]).timestamp() - at) < 0.05
    assert [p["outcome"] for p in _item_proofs(agent, province, "marker")] == ["completed"]
    x = rec.samples
    heard = _heard_at(x, rec, src, played_real)
    assert abs(heard - played_real) < 0.05
    # When the occurrence time came round again, nothing was heard at all until the
    # marker, 8 s later (on the agent's clock).
    spans = [rec.wall_of(round(s * RATE)) for s, _e in audible_spans(x)]
    assert spans and all(s < played_real + 2.5 or s > marker_real - 0.1 for s in spans), (
        spans, again_real, marker_real,
    )  # fmt: skip
    quiet = x[rec.index_of(again_real - 1.0) : rec.index_of(marker_real - 0.1)]
    assert float(np.max(np.abs(quiet))) < 1e-3


def test_playout_forward_jump_skips_once_and_loses_no_emergency(
    tmp_path: Path, broker: Any, pulse: PulseRig, agent_clock: AgentClock
) -> None:
    news_src = programme_signal(2.0, seed=7)
    siren_src = _siren(1.5)
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    news = place_in_cache(agent, write_wav(tmp_path / "news.wav", news_src))
    siren = place_in_cache(agent, write_wav(tmp_path / "siren.wav", siren_src))
    marker = place_in_cache(agent, write_wav(tmp_path / "marker.wav", _tone(0.5)))
    with recording(agent, province, pulse) as rec:
        t0 = float(int(agent_clock.now()))
        # The marker is not jumped over: it plays after everything the jump caused,
        # the positive event after which a second skip proof would have come.
        set_schedule(province, [
            item_at("news", news, t0 + 30, window_s=5),
            item_at("siren", siren, t0 + 40, window_s=5, priority=95, resume="restart"),
            item_at("marker", marker, t0 + 128),
        ])  # fmt: skip
        # The accepted ack means every playout loop holds the schedule (set before it).
        jumped_real = time.time()
        agent_clock.step(120.0)  # the clock was slow: both windows are now behind it
        sent_real = time.time()
        a_jti = province.send(
            DEVICE, "alert.start",
            {"alert_id": "a1", "text": "Khẩn cấp", "repeat": 1, "chime": False},
        )  # fmt: skip
        province.wait_ack(a_jti, status="done", timeout=30)
        province.wait_for(
            lambda _m: any(
                p["outcome"] in ("completed", "resumed")
                for p in _item_proofs(agent, province, "siren")
            ),
            20,
        )
        province.wait_for(lambda _m: bool(_item_proofs(agent, province, "news")), 10)
        province.wait_for(lambda _m: bool(_item_proofs(agent, province, "marker")), 40)
        rec.wait_silence_after(time.time())
    x = rec.samples
    # The normal item: never heard, exactly one skip proof.
    (skip,) = _item_proofs(agent, province, "news")
    assert (skip["outcome"], skip["reason"]) == ("skipped", "window_passed")
    assert skip["started_at"] is None and skip["ended_at"] is None
    assert float(np.max(np.abs(x[: rec.index_of(jumped_real)]))) < 1e-3  # silence before
    # The alert sent right after the jump: heard at once, and proved.
    (alert,) = [p for p in proofs(agent, province) if p.get("alert_id") == "a1"]
    assert alert["outcome"] == "completed"
    spans = [
        (rec.wall_of(round(a * RATE)), rec.wall_of(round(b * RATE))) for a, b in audible_spans(x)
    ]
    # (When it sounded is when the agent says it started it: how soon after the send is
    # the latency benchmark's business, not a loaded machine's test.)
    alert_real = parse_rfc3339(alert["started_at"]).timestamp() - agent_clock.offset
    assert spans and sent_real < spans[0][0], (spans, sent_real)
    assert abs(spans[0][0] - alert_real) < 0.05, (spans[0][0], alert_real)
    # The emergency item jumped over: played late, in full, after the alert.
    sirens = _item_proofs(agent, province, "siren")
    assert sirens[-1]["outcome"] in ("completed", "resumed"), sirens
    i, c = align_near(x, siren_src, rec.index_of(spans[0][0]) + 3 * RATE, 3 * RATE)
    assert c > 0.9, f"the emergency item was not heard in full (correlation {c:.2f})"
    assert rec.wall_of(i) > spans[0][0] + 0.5  # after the alert began
    # ... and the news programme is nowhere in the recording.
    hits = [
        align_near(x, news_src[: RATE // 2], i, RATE)[1] for i in range(RATE, len(x) - RATE, RATE)
    ]
    assert max(hits) < 0.5


class ProofWatch:
    """A province-side subscriber with a persistent session (user `watch`): proofs
    published while it is away (broker restarted) are queued for it, not lost."""

    def __init__(self, broker: Any) -> None:
        self.got: list[Msg] = []
        self._cond = threading.Condition()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="watch", protocol=paho.MQTTv5)
        c.username_pw_set("watch", broker.password("watch"))
        c.tls_set(ca_certs=str(broker.ca_file))
        c.reconnect_delay_set(min_delay=1, max_delay=1)
        c.on_message = self._on_message
        up = threading.Event()
        c.on_connect = lambda *a, **k: up.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect(broker.hostname, broker.port, keepalive=30, clean_start=False, properties=props)
        c.loop_start()
        assert up.wait(10), "watch client could not connect"
        subscribed = threading.Event()
        c.on_subscribe = lambda *_a: subscribed.set()
        c.subscribe(PROOF_TOPIC, qos=1)
        assert subscribed.wait(30), "watch subscription not granted"
        self.client = c

    def _on_message(self, _c: Any, _u: Any, m: paho.MQTTMessage) -> None:
        with self._cond:
            self.got.append(Msg(m.topic, bytes(m.payload), bool(m.retain), time.time()))
            self._cond.notify_all()

    def wait(self, n: int, timeout: float) -> list[Msg]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.got) >= n, timeout), "no proof arrived"
            return list(self.got)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _outbox_proofs(agent: AgentProc) -> list[bytes]:
    db = open_db(agent.config.parent / "state" / "state.db")
    try:
        return [r.payload for r in Outbox(db, 1 << 20).pending() if r.topic == PROOF_TOPIC]
    finally:
        db.close()


def test_playout_schedule_plays_offline_after_reboot(
    tmp_path: Path, broker_factory: Any, pulse: PulseRig
) -> None:
    broker = broker_factory(console_users=("central", "watch"))
    src = programme_signal(2.0)
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    ref = place_in_cache(agent, write_wav(tmp_path / "news.wav", src))
    watch = ProofWatch(broker)
    try:
        with recording(agent, province, pulse) as rec:
            at = float(int(time.time()) + 8)
            set_schedule(province, [item_at("news", ref, at)])
            province.close()
            broker.stop()  # the 3G link is gone ...
            agent.kill()  # ... and the power is cut
            agent.start()  # the device boots with no network
            deadline = time.monotonic() + at + 10 - time.time()
            stored: list[bytes] = []
            while not stored and time.monotonic() < deadline:
                time.sleep(0.2)
                stored = _outbox_proofs(agent)
            assert stored, "no proof in the outbox"
            assert watch.got == []
            rec.wait_silence_after(time.time())
            broker.start()  # the link is back: the proof is delivered from the outbox
            (msg,) = watch.wait(1, 30)
        record = verified_proof(agent, msg)
        assert msg.payload == stored[0]
        assert record["item_id"] == "news" and record["outcome"] == "completed"
        started = parse_rfc3339(record["started_at"]).timestamp()
        assert abs(started - at) < 0.05, (started, at)
        heard = _heard_at(rec.samples, rec, src, at)
        assert abs(heard - at) < 0.05, (heard, at)
    finally:
        watch.close()
