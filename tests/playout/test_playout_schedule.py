"""schedule.set played at the null sink on time; pre-emption by an alert and `join`
resumption; quiet hours silence a normal item but never an alert."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from support.playout import (
    DEVICE,
    TZ,
    audible_spans,
    item_at,
    place_in_cache,
    proofs,
    recording,
    set_schedule,
    sound_agent,
)
from support.pulse import RATE, PulseRig, programme_signal, write_wav
from support.recorded import wait_audible
from support.timing import align_near

from agent.timeutil import parse_rfc3339


def test_playout_schedule_on_time_preempted_and_joined(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    src = programme_signal(9.0)
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    ref = place_in_cache(agent, write_wav(tmp_path / "news.wav", src))
    with recording(agent, province, pulse) as rec:
        at = datetime.fromtimestamp(int(time.time()) + 4, TZ)
        set_schedule(province, [item_at("news", ref, at.timestamp(), resume="join")])
        # Into the programme: heard, and two seconds of it recorded.
        rec.wait_silence_after(wait_audible(rec, after=at.timestamp() - 1.0) + 2.0, timeout=30)
        a_jti = province.send(
            DEVICE, "alert.start",
            {"alert_id": "a1", "text": "Khẩn cấp", "repeat": 1, "chime": False},
        )  # fmt: skip
        province.wait_ack(a_jti, status="done", timeout=30)
        # Both segments proved (the resumed one when the programme ends, at its clock time).
        province.wait_for(
            lambda _m: len([p for p in proofs(agent, province) if p.get("item_id")]) >= 2, 30
        )
        rec.wait_silence_after(time.time())
    x = rec.samples
    # On time: the programme's first second is heard within 50 ms of its schedule, and
    # the proof's started_at agrees with the recording within 50 ms.
    head = src[:RATE]
    i0, c0 = align_near(x, head, rec.index_of(at.timestamp()), RATE // 2)
    assert c0 > 0.9
    heard_at = rec.wall_of(i0)
    assert abs(heard_at - at.timestamp()) < 0.05, (heard_at, at.timestamp())
    news = [p for p in proofs(agent, province) if p.get("item_id") == "news"]
    proof_start = parse_rfc3339(news[0]["started_at"]).timestamp()
    assert abs(heard_at - proof_start) < 0.05, (heard_at, proof_start)
    alert = [p for p in proofs(agent, province) if p.get("alert_id") == "a1"]
    assert [p["outcome"] for p in news] == ["preempted", "resumed"]
    assert alert and alert[0]["outcome"] == "completed"
    first, second = news
    # Placed on its sample (the DAC time the player measured), also right after start-up
    # with the default [audio] settings (no amplifier: no warm-up).
    assert abs(proof_start - at.timestamp()) < 0.02, (proof_start, at.timestamp())
    assert first["scheduled_at"] is not None and first["media_sha256"] == [ref.sha256]
    # Joined: after the alert, the programme continues where the clock says it is.
    resumed_at = parse_rfc3339(second["started_at"]).timestamp()
    j = rec.index_of(resumed_at + 0.3)
    offset = round((resumed_at + 0.3 - at.timestamp()) * RATE)
    seg = src[offset : offset + RATE // 2]
    k, ck = align_near(x, seg, j, RATE // 2)
    assert ck > 0.9
    assert abs(k - j) < RATE * 0.05, f"rejoined {1000 * (k - j) / RATE:.0f} ms off the clock"
    # And the alert sounded between the two segments.
    a_start = parse_rfc3339(alert[0]["started_at"]).timestamp()
    assert parse_rfc3339(first["ended_at"]).timestamp() <= a_start + 0.05 < resumed_at


def test_playout_quiet_hours_silence_items_not_alerts(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    now = datetime.now(TZ)
    start = now.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=30)
    quiet = f"{start:%H:%M}-{end:%H:%M}"
    src = programme_signal(2.0)
    agent, province, _ = sound_agent(tmp_path / "a", broker, quiet=quiet)
    ref = place_in_cache(agent, write_wav(tmp_path / "spot.wav", src))
    with recording(agent, province, pulse) as rec:
        at = datetime.fromtimestamp(int(time.time()) + 3, TZ)
        ack = set_schedule(province, [item_at("news", ref, at.timestamp())])
        assert any("news" in w for w in ack.get("warnings") or []), ack
        province.wait_for(lambda _m: any(p.get("item_id") for p in proofs(agent, province)), 15)
        # The recording covers the item's slot and more: silence there is meaningful.
        silent_until = at.timestamp() + 2.5
        rec.wait_silence_after(silent_until, timeout=30)
        a_jti = province.send(
            DEVICE, "alert.start", {"alert_id": "night", "text": "Khẩn cấp", "repeat": 1}
        )
        province.wait_ack(a_jti, status="done", timeout=30)
        rec.wait_silence_after(time.time())
    (skip,) = [p for p in proofs(agent, province) if p.get("item_id") == "news"]
    assert skip["outcome"] == "skipped" and skip["reason"] == "quiet_hours"
    assert skip["started_at"] is None and skip["ended_at"] is None
    x = rec.samples
    quiet_part = x[: rec.index_of(silent_until)]
    assert float(np.max(np.abs(quiet_part))) < 1e-3  # nothing sounded for the item
    spans = audible_spans(x)
    assert spans and rec.wall_of(round(spans[0][0] * RATE)) > silent_until  # the alert did
