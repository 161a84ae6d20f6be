"""Issue 7, must-hold: signed inputs that used to brick a device or end an emergency,
sent to a real agent through a real broker; what matters is heard at the null sink.

- every item-1 input from a commune key (schedule.set only, priority <= 49), to the
  device and to its group: rejected `bad_args` or harmless; the agent stays up,
  restarts cleanly, and a province alert sent right after is heard;
- item 2 (a schedule.set key signs alert.start with iat = 2**53) and an accepted
  command with such an iat, then an untrusted clock: an alert signed now is heard;
- a commune key's `alert.stop` of a province alert: `not_allowed`, the alert plays
  to its end, its proof is `completed`;
- a jti pruned at a trusted restart, replayed after the clock went back (NTP
  spoofed into the past, then an untrusted boot): rejected.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from support.agentclock import AgentClock
from support.agentproc import AgentProc, Province, TrustKey
from support.http_media import MediaServer
from support.playout import DEVICE, proofs, recording, sound_agent
from support.pulse import PulseRig
from support.recorded import ALERT_TEXT, wait_audible

from agent import jws

GROUP = "vn-48"
MEDIA = {"url": "https://media.example.vn/a.mp3", "sha256": "a" * 64, "size": 1000,
         "type": "audio/mpeg"}  # fmt: skip


def commune_key(*commands: str) -> TrustKey:
    return TrustKey("vn-48-490-20194-op", commands=commands or ("schedule.set",),
                    max_priority=49)  # fmt: skip


def item(**over: Any) -> dict[str, Any]:
    return {"id": "news", "kind": "audio", "media": [MEDIA],
            "start": "2026-11-24T05:30:00+07:00", "priority": 20, **over}  # fmt: skip


def year_ago() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 365 * 86400))


# Each: (what, args, acceptable outcome "bad_args" | "accepted").
ITEM_1: list[tuple[str, dict[str, Any], str]] = [
    ("window_s 10**12", {"version": 2, "items": [item(window_s=10**12)]}, "bad_args"),
    ("start year 0001", {"version": 3, "items": [item(start="0001-01-01T00:00:00+07:00")]},
     "bad_args"),
    ("until year 9999", {"version": 4, "items": [item(until="9999-12-31T23:59:59+07:00")]},
     "bad_args"),
    ("version 2**64", {"version": 2**64, "items": [item()]}, "bad_args"),
    ("FREQ=SECONDLY", {"version": 5, "items": [item(start=year_ago(), rrule="FREQ=SECONDLY",
                                                     window_s=86400)]}, "bad_args"),
    ("BYSECOND sixty", {"version": 6, "items": [item(
        start=year_ago(), rrule="FREQ=MINUTELY;BYSECOND=" + ",".join(map(str, range(60))))]},
     "bad_args"),
    ("COUNT 10**9", {"version": 7, "items": [item(rrule="FREQ=DAILY;COUNT=1000000000")]},
     "bad_args"),
    ("RRULE UNTIL 9999", {"version": 8, "items": [item(rrule="FREQ=DAILY;UNTIL=99991231T000000Z")]},
     "bad_args"),
    ("300 items", {"version": 9, "items": [item(id=f"i{i}") for i in range(300)]}, "bad_args"),
    ("media over the cache quota", {"version": 10, "items": [item(
        media=[dict(MEDIA, size=2**40)])]}, "bad_args"),
    ("file:// media", {"version": 11, "items": [item(
        media=[dict(MEDIA, url="file:///etc/shadow")])]}, "bad_args"),
    # Harmless: valid, and bounded work whatever the device does with them.
    ("FREQ=MINUTELY from a year back, 1-day window",
     {"version": 20, "items": [item(start=year_ago(), rrule="FREQ=MINUTELY", window_s=86400)]},
     "accepted"),
    ("never-matching rule", {"version": 21, "items": [item(
        start=year_ago(), rrule="FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30")]}, "accepted"),
]


def _send(province: Province, key: TrustKey, aud: str, args: dict[str, Any],
          **kw: Any) -> str:
    jti, token = province.token(aud, "schedule.set", args, key=key, **kw)
    topic = f"tcs/v1/dev/{aud}/cmd" if aud == DEVICE else f"tcs/v1/grp/{aud}/cmd"
    province.publish(topic, token)
    return jti


def _alert_heard(province: Province, rec: Any, alert_id: str) -> None:
    sent = time.time()
    jti = province.send(DEVICE, "alert.start", {"alert_id": alert_id, "text": ALERT_TEXT,
                                                "repeat": 1})  # fmt: skip
    province.wait_ack(jti, status="accepted", timeout=30)
    wait_audible(rec, after=sent)
    province.wait_ack(jti, status="done", timeout=60)


def _restart(agent: AgentProc, province: Province, *, trust: str | None = None,
             clock: AgentClock | None = None, offset_s: float = 0.0) -> dict[str, Any]:
    """Stop the agent cleanly (it must still be running), optionally set its clock trust
    mode or clock offset, start it; its first heartbeat."""
    assert agent.proc is not None and agent.proc.poll() is None, agent.output()[-3000:]
    assert agent.stop() == 0, agent.output()[-3000:]
    if trust is not None:
        _set_trust(agent, trust)
    if clock is not None:
        clock.set(offset_s)
    started = time.time()
    agent.start()
    hb = province.wait_for(lambda m: m.topic == f"tcs/v1/dev/{DEVICE}/hb" and m.at >= started, 30)
    return hb.json()  # type: ignore[no-any-return]


def test_item_1_inputs_are_refused_or_harmless_and_an_alert_is_heard_after(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    commune = commune_key()
    agent, province, _ = sound_agent(tmp_path / "a", broker, more_keys=[commune])
    with recording(agent, province, pulse) as rec:
        for aud, base in ((DEVICE, 0), (GROUP, 100)):
            for what, args, expected in ITEM_1:
                version = args["version"] + base if args["version"] < 2**53 else args["version"]
                jti = _send(province, commune, aud, dict(args, version=version))
                ack = province.wait_ack(jti, timeout=20)
                if expected == "bad_args":
                    assert (ack["status"], ack["code"]) == ("rejected", "bad_args"), (what, ack)
                else:
                    assert ack["status"] in ("accepted", "stale"), (what, ack)
            # A command padded with ~170 KB of unknown fields (~230 KB signed): a small ack.
            junk = {f"x{i:05d}": "y" * 40 for i in range(3500)}
            jti = _send(province, commune, aud, {"version": 30 + base, "items": [], **junk})
            msg = province.wait_for(
                lambda m, j=jti: m.topic.endswith("/ack") and m.json()["jti"] == j, 20)
            assert len(msg.payload) < 4096, len(msg.payload)
            assert "more unknown fields ignored" in msg.json()["warnings"][-1]
        assert agent.proc is not None and agent.proc.poll() is None, agent.output()[-3000:]
        _restart(agent, province)
        _alert_heard(province, rec, "flood-after-item-1")


def _set_trust(agent: AgentProc, mode: str) -> None:
    text = agent.config.read_text()
    for old in ('trust = "always"', 'trust = "never"', 'trust = "auto"'):
        text = text.replace(old, f'trust = "{mode}"')
    agent.config.write_text(text)


def test_item_2_a_poisoned_iat_never_blocks_an_alert_on_an_untrusted_clock(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    commune = commune_key()
    agent, province, _ = sound_agent(tmp_path / "a", broker, more_keys=[commune])
    with recording(agent, province, pulse) as rec:
        # Rejected (the key may not start alerts), with a verified signature.
        jti, token = province.token(DEVICE, "alert.start", {"alert_id": "x", "text": "x"},
                                    key=commune, iat=2**53 - 600, ttl=600)  # fmt: skip
        province.publish(f"tcs/v1/dev/{DEVICE}/cmd", token)
        assert province.wait_ack(jti)["code"] == "not_allowed"
        # Accepted (the key may schedule), with the same absurd iat and exp.
        jti = _send(province, commune, DEVICE, {"version": 1, "items": []},
                    iat=2**53 - 600, ttl=600)
        assert province.wait_ack(jti)["status"] == "accepted"
        # Power cut, no RTC, no NTP: the clock is not trusted at the next start.
        hb = _restart(agent, province, trust="never")
        assert hb["clock"]["synced"] is False, hb
        _alert_heard(province, rec, "flood-untrusted")


def test_a_commune_key_cannot_stop_a_province_alert(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    commune = commune_key("schedule.set", "test.run", "alert.stop")
    agent, province, _ = sound_agent(tmp_path / "a", broker, more_keys=[commune])
    with recording(agent, province, pulse) as rec:
        sent = time.time()
        alert = province.send(DEVICE, "alert.start", {"alert_id": "flood-1", "text": ALERT_TEXT,
                                                      "repeat": 3, "gap_s": 1})  # fmt: skip
        province.wait_ack(alert, status="accepted", timeout=30)
        wait_audible(rec, after=sent)
        stop, token = province.token(DEVICE, "alert.stop", {"alert_id": "flood-1"}, key=commune)
        province.publish(f"tcs/v1/dev/{DEVICE}/cmd", token)
        refused = province.wait_ack(stop, timeout=10)
        assert (refused["status"], refused["code"]) == ("rejected", "not_allowed"), refused
        assert "priority" in refused["detail"]
        done = province.wait_ack(alert, status="done", timeout=90)
        assert done["status"] == "done"
        province.wait_for(lambda m: m.topic.endswith("/proof"), 10)
    (record,) = [p for p in proofs(agent, province) if p.get("alert_id") == "flood-1"]
    assert record["outcome"] == "completed", record


def test_a_pruned_jti_never_comes_back_with_a_clock_in_the_past(
    tmp_path: Path, broker: Any, agent_clock: AgentClock
) -> None:
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEVICE, [GROUP], [key])
    province = Province(broker, key)
    with agent:
        province.wait_for(lambda m: m.topic == f"tcs/v1/dev/{DEVICE}/hb", 30)
        jti, token = province.token(DEVICE, "volume.set", {"level": 30}, ttl=120)
        province.publish(f"tcs/v1/dev/{DEVICE}/cmd", token)
        assert province.wait_ack(jti)["status"] == "accepted"
        # A day passes (trusted clock): the restart prunes the used jti.
        _restart(agent, province, clock=agent_clock, offset_s=86400.0)
        # NTP spoofed back to the real day (the kernel still says "synchronised").
        _restart(agent, province, clock=agent_clock, offset_s=0.0)
        _, replay = province.token(DEVICE, "volume.set", {"level": 99}, jti=jti, ttl=120)
        province.publish(f"tcs/v1/dev/{DEVICE}/cmd", replay)
        # `expired` (§3 step 6 runs before the jti check): the time floor, a day
        # ahead, is the device's time now.
        again = province.wait_ack(jti, status="rejected", timeout=10)
        assert again["code"] in ("expired", "replayed"), again
        # And after an untrusted boot the same holds, for the very token too.
        _restart(agent, province, trust="never")
        n = len([a for a in province.acks() if a["jti"] == jti])
        province.publish(f"tcs/v1/dev/{DEVICE}/cmd", token)
        province.wait_for(lambda m: m.topic.endswith("/ack")
                          and len([a for a in province.acks() if a["jti"] == jti]) > n, 10)
        last = [a for a in province.acks() if a["jti"] == jti][-1]
        assert (last["status"], last["code"]) == ("rejected", "expired"), last
        # Nothing was acted on: a restart's first heartbeat still reports volume 30.
        assert _restart(agent, province)["volume"] == 30
    province.close()


def test_an_alert_in_an_unknown_lang_is_spoken_with_the_configured_voice(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    # Issue 7 item 9: `espeak-ng -v vn` exits 1. The configured voice speaks instead.
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    with recording(agent, province, pulse) as rec:
        sent = time.time()
        jti = province.send(DEVICE, "alert.start", {"alert_id": "vn-1", "text": ALERT_TEXT,
                                                    "lang": "vn", "repeat": 1})  # fmt: skip
        province.wait_ack(jti, status="accepted", timeout=30)
        wait_audible(rec, after=sent)
        done = province.wait_ack(jti, status="done", timeout=60)
        assert any("'vn'" in w and "configured voice 'vi'" in w for w in done["warnings"]), done


def test_no_message_ever_reveals_a_local_file(tmp_path: Path, broker: Any) -> None:
    """Issue 7 item 6: a remote `file://` MediaRef is refused, a LAN URL too, and no
    ack, event, proof or heartbeat carries the hash (or size) of a file on the device."""
    secret = tmp_path / "broker.pass"
    secret.write_bytes(os.urandom(777))
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEVICE, [GROUP], [key])
    province = Province(broker, key)
    with MediaServer() as lan, agent:
        province.wait_for(lambda m: m.topic.endswith(f"{DEVICE}/hb"), 30)
        on_lan = lan.add("/secret", secret.read_bytes())
        guess = "0" * 64  # the sender does not know the hash: that is what it probes for
        for url in (secret.as_uri(), f"file://localhost{secret}", on_lan):
            ref = {"url": url, "sha256": guess, "size": 777, "type": "audio/wav"}
            for cmd, args in (
                ("media.prefetch", {"media": [ref]}),
                ("alert.start", {"alert_id": "probe", "media": [ref], "repeat": 1}),
                ("schedule.set", {"version": 1, "items": [{
                    "id": "p", "kind": "audio", "media": [ref],
                    "start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}]}),
            ):
                jti = province.send(DEVICE, cmd, args)
                first = province.wait_ack(jti, timeout=10)
                if url.startswith("file:"):
                    assert (first["status"], first["code"]) == ("rejected", "bad_args"), first
                elif cmd == "media.prefetch":  # the LAN address: refused when fetched
                    failed = province.wait_ack(jti, status="failed", timeout=30)
                    assert any("LAN" in w or "loopback" in w for w in failed["warnings"]), failed
        assert lan.served("/secret") == []  # not even asked for
        asked = time.time()
        province.wait_ack(province.send(DEVICE, "status.request"))
        province.wait_for(lambda m: m.topic.endswith("/hb") and m.at >= asked, 10)
    province.close()
    for m in province.messages:
        texts = [m.payload]
        if m.topic.endswith("/proof"):
            texts += [jws.b64url_decode(part) for part in m.payload.split(b".")[:2]]
        for text in texts:
            assert digest.encode() not in text.lower(), (m.topic, text[:300])
            assert digest[:12].encode() not in text.lower(), (m.topic, text[:300])
