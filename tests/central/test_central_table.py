"""The watch model: rows from retained state and heartbeats, proofs verified loudly."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.central.acl import DeviceEntry
from agent.central.proofs import enrolled_keys
from agent.central.table import Board

DEV1 = Ed25519PrivateKey.generate()


def board() -> Board:
    devices = [DeviceEntry("dev-0001", ("vn-48",), jws.b64url_encode(jws.public_raw(DEV1))),
               DeviceEntry("dev-0002", ("vn-48",), None)]
    keys, problems = enrolled_keys(devices)
    assert problems == []
    return Board(devices, keys)


def proof(key: Ed25519PrivateKey, kid: str = "dev-0001") -> bytes:
    claims = {"id": "p1", "item_id": "morning-news", "kind": "audio", "outcome": "completed",
              "played_ms": 30000}
    return jws.sign_compact(key, {"alg": "EdDSA", "typ": "JWT", "kid": kid}, claims).encode()


def test_enrolled_devices_show_before_any_report_and_state_sets_online() -> None:
    b = board()
    assert "dev-0002  ?" in b.render(0)
    b.handle("tcs/v1/dev/dev-0001/state",
             json.dumps({"online": True, "at": "x", "schedule_version": 42}).encode(), 0)
    [line] = b.handle("tcs/v1/dev/dev-0002/state", json.dumps({"online": False}).encode(), 0)
    assert line.loud and "OFFLINE" in line.text
    table = b.render(0).splitlines()
    assert table[0].split()[:2] == ["DEVICE", "STATUS"]
    assert table[1].split()[:4] == ["dev-0001", "online", "-", "42"]
    assert table[2].split()[:2] == ["dev-0002", "OFFLINE"]


def test_heartbeat_fills_the_row_and_age_counts_from_receipt() -> None:
    b = board()
    hb = {"seq": 1, "schedule_version": 7, "playing": {"item_id": "news", "priority": 20},
          "alert_id": None, "volume": 80, "outbox": 3}
    b.handle("tcs/v1/dev/dev-0001/hb", json.dumps(hb).encode(), 100.0)
    row = b.render(225.0).splitlines()[1].split()
    assert row == ["dev-0001", "online", "2m05s", "7", "news(p20)", "-", "80", "3", "-"]


def test_unknown_device_reports_are_shown_as_not_enrolled() -> None:
    b = board()
    b.handle("tcs/v1/dev/dev-0099/state", b'{"online": true}', 0)
    assert "online (not enrolled)" in b.render(0)


def test_proof_verified_forged_and_unknown() -> None:
    b = board()
    [ok] = b.handle("tcs/v1/dev/dev-0001/proof", proof(DEV1), 0)
    assert "VERIFIED" in ok.text and not ok.loud and ok.data["proof"]["item_id"] == "morning-news"
    [forged] = b.handle("tcs/v1/dev/dev-0001/proof", proof(Ed25519PrivateKey.generate()), 0)
    assert forged.loud and "FORGED" in forged.text and "VERIFIED" not in forged.text
    # dev-0001's genuine key vouching on dev-0002's topic is a forgery too.
    [other] = b.handle("tcs/v1/dev/dev-0002/proof", proof(DEV1), 0)
    assert other.loud and "FORGED" in other.text
    [unknown] = b.handle("tcs/v1/dev/dev-0002/proof",
                         proof(Ed25519PrivateKey.generate(), kid="dev-0002"), 0)
    assert unknown.loud and "UNKNOWN DEVICE" in unknown.text
    [garbage] = b.handle("tcs/v1/dev/dev-0001/proof", b"\xff\xfe", 0)
    assert garbage.loud and "FORGED" in garbage.text


def test_acks_events_and_garbage_become_log_lines() -> None:
    b = board()
    [a] = b.handle("tcs/v1/dev/dev-0001/ack", json.dumps(
        {"jti": "j", "cmd": "alert.start", "status": "rejected", "code": "bad_signature"}
    ).encode(), 0)
    assert a.loud and a.text.startswith("ack dev-0001 REJECTED bad_signature")
    [e] = b.handle("tcs/v1/dev/dev-0001/event", json.dumps(
        {"level": "error", "code": "audio_lost", "detail": "no sink"}).encode(), 0)
    assert e.loud and "audio_lost: no sink" in e.text
    [w] = b.handle("tcs/v1/dev/dev-0001/hb", b"[1,2]", 0)
    assert w.kind == "warning"
