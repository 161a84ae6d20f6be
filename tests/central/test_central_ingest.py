"""What the collector makes of each message (pure): bounded, validated, never raising."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.records import proof_record, signed_proof

from agent import jws
from agent.central.ingest import MAX_PAYLOAD, IngestContext, parse
from agent.reports import dumps

KEY = Ed25519PrivateKey.generate()
CTX = IngestContext({"dev-0001": jws.public_raw(KEY)}, ZoneInfo("Asia/Ho_Chi_Minh"), 60)
AT = datetime(2026, 11, 3, 5, 30, tzinfo=UTC)


def test_genuine_proof_becomes_a_row_with_its_times() -> None:
    parsed = parse("tcs/v1/dev/dev-0001/proof", signed_proof(KEY, "dev-0001", proof_record(
        "p-1", scheduled=AT, start_delay_s=2.5, played_s=60)), 1, CTX)
    [row] = parsed.rows
    assert row.table == "proofs" and parsed.problem is None
    v = row.values
    at_ms = int(AT.timestamp() * 1000)
    assert (v["proof_id"], v["subject_id"], v["outcome"], v["played_ms"]) == (
        "p-1", "morning", "completed", 60_000)
    assert (v["scheduled_ms"], v["started_ms"], v["at_ms"]) == (at_ms, at_ms + 2500, at_ms)


def test_signed_but_unusable_proof_is_kept_as_malformed() -> None:
    record = proof_record("p-2", scheduled=AT)
    record["outcome"] = "played-loudly"
    parsed = parse("tcs/v1/dev/dev-0001/proof", signed_proof(KEY, "dev-0001", record), 1, CTX)
    [row] = parsed.rows
    assert row.table == "suspect_proofs" and row.values["verdict"] == "MALFORMED"
    assert "outcome" in (parsed.problem or "")


def test_bad_topics_oversized_and_non_json_messages_store_nothing() -> None:
    for topic, payload in (
        ("tcs/v1/dev/dev-0001/cmd", b"{}"),
        ("tcs/v1/dev/+/hb", b"{}"),
        ("tcs/v1/dev/DEV_1/hb", b"{}"),
        ("tcs/v1/dev/dev-0001/hb", b"x" * (MAX_PAYLOAD + 1)),
        ("tcs/v1/dev/dev-0001/event", b"[1, 2]"),
        ("tcs/v1/dev/dev-0001/ack", dumps({"status": "maybe"})),
        ("tcs/v1/dev/dev-0001/event", dumps({"level": "loud", "code": "x"})),
    ):
        parsed = parse(topic, payload, 1, CTX)
        assert parsed.rows == [] and parsed.problem, topic


def test_heartbeat_fields_are_typed_and_bounded() -> None:
    parsed = parse("tcs/v1/dev/dev-0001/hb", dumps({
        "seq": "7", "volume": True, "outbox": 3, "playing": {"item_id": "n" * 500},
        "alert_id": 5, "at": "yesterday"}), 1_000, CTX)
    [row] = parsed.rows
    v = row.values
    assert (v["seq"], v["volume"], v["outbox"], v["alert_id"], v["at_ms"]) == (
        None, None, 3, None, None)
    assert v["playing"] == "n" * 200
    assert len(parsed.hits) == 1
