"""verify_command: one test per §3 rejection code, with real Ed25519-signed tokens."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from support.protocol import (
    DEVICE,
    NOW,
    VALID_ARGS,
    Signer,
    audio_item,
    hand_token,
    make_ctx,
    no_jti,
)

from agent.jws import b64url_decode, b64url_encode
from agent.model import AlertStart, ScheduleSet
from agent.protocol import (
    Command,
    Duplicate,
    Outcome,
    Rejection,
    VerifyContext,
    topic_audience,
    verify_command,
)

DEV_TOPIC = f"tcs/v1/dev/{DEVICE}/cmd"


@pytest.fixture(scope="module")
def prov() -> Signer:
    return Signer.new("vn-48-emergency")


@pytest.fixture(scope="module")
def ctx(prov: Signer) -> VerifyContext:
    return make_ctx([prov.trust_key()])


def run(payload: bytes, ctx: VerifyContext, topic: str = DEV_TOPIC, *, now: float = NOW,
        trusted: bool = True, lower: float = 0.0, seen: Any = no_jti) -> Outcome:
    return verify_command(payload, topic, ctx, now=now, clock_trusted=trusted,
                          time_lower_bound=lower, seen_jti=seen)


def rejected(outcome: Outcome, code: str) -> Rejection:
    assert isinstance(outcome, Rejection), outcome
    assert outcome.code == code, outcome
    assert "internal verifier error" not in outcome.detail
    return outcome


# --- accepted -----------------------------------------------------------------


def test_valid_alert_is_accepted_with_typed_args(prov: Signer, ctx: VerifyContext) -> None:
    payload = prov.token("alert.start", VALID_ARGS["alert.start"], jti="a-1")
    out = run(payload, ctx)
    assert isinstance(out, Command)
    assert (out.jti, out.cmd, out.kid, out.aud, out.priority) == (
        "a-1", "alert.start", "vn-48-emergency", DEVICE, 100)
    assert out.token_digest == hashlib.sha256(payload).hexdigest()
    assert isinstance(out.args, AlertStart) and out.args.text == "Lũ khẩn cấp"
    assert out.warnings == ()


def test_group_topic_is_accepted(prov: Signer, ctx: VerifyContext) -> None:
    payload = prov.token("volume.set", {"level": 5}, aud="vn-48-490")
    out = run(payload, ctx, "tcs/v1/grp/vn-48-490/cmd")
    assert isinstance(out, Command) and out.aud == "vn-48-490"


def test_unknown_args_fields_are_ignored_but_warned(prov: Signer, ctx: VerifyContext) -> None:
    out = run(prov.token("volume.set", {"level": 5, "volum": 9}), ctx)
    assert isinstance(out, Command)
    assert out.warnings == ("volum: unknown field ignored",)


def test_schedule_priority_is_its_highest_item(prov: Signer, ctx: VerifyContext) -> None:
    items = [audio_item("a", priority=10), audio_item("b", priority=55), audio_item("c")]
    out = run(prov.token("schedule.set", {"version": 1, "items": items}), ctx)
    assert isinstance(out, Command) and out.priority == 55
    assert isinstance(out.args, ScheduleSet) and [i.id for i in out.args.items] == ["a", "b", "c"]


# --- step 1: malformed ----------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\xff\xfe garbage \x80",
        b"not.a.jws.at.all",
        b"abc.def",
        b"\xff\xfe.\xfa.\xfb",  # invalid UTF-8 / not base64url
        b"a b.c.d",
    ],
)
def test_garbage_is_malformed_with_nothing_echoed(payload: bytes, ctx: VerifyContext) -> None:
    out = rejected(run(payload, ctx), "malformed")
    assert out.jti is None and out.cmd is None and out.verified_iat is None


def test_invalid_utf8_in_claims_is_malformed(prov: Signer, ctx: VerifyContext) -> None:
    h = b64url_encode(b'{"alg":"EdDSA","kid":"vn-48-emergency"}')
    p = b64url_encode(b'{"jti":"\xff\xfe"}')
    out = rejected(run(f"{h}.{p}.AAAA".encode(), ctx), "malformed")
    assert "UTF-8" in out.detail


def test_truncated_token_is_malformed(prov: Signer, ctx: VerifyContext) -> None:
    payload = prov.token("status.request")
    h, p, _ = payload.split(b".")
    rejected(run(h + b"." + p, ctx), "malformed")
    # Cut inside the claims: base64 of a JSON prefix no longer parses.
    rejected(run(h + b"." + p[: len(p) // 2] + b".AAAA", ctx), "malformed")


def test_payload_over_256_kib_is_refused_before_decoding(prov: Signer,
                                                         ctx: VerifyContext) -> None:
    args = {"alert_id": "big", "text": "x" * (300 * 1024)}
    out = rejected(run(prov.token("alert.start", args, jti="big-1"), ctx), "malformed")
    assert "bytes" in out.detail
    # Size comes before parsing, so not even the jti is read.
    assert out.jti is None


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c: c.pop("iss"), "iss"),
        (lambda c: c.__setitem__("aud", ["dev-0001"]), "aud"),
        (lambda c: c.__setitem__("jti", ""), "jti"),
        (lambda c: c.__setitem__("jti", "j" * 65), "jti"),
        (lambda c: c.__setitem__("iat", True), "iat"),
        (lambda c: c.__setitem__("exp", float(NOW + 60)), "exp"),
        (lambda c: c.__setitem__("exp", 10**400), "exp"),
        (lambda c: c.__setitem__("iat", -1), "iat"),
        (lambda c: c.__setitem__("args", []), "args"),
        (lambda c: c.pop("args"), "args"),
    ],
)
def test_mistyped_claims_are_malformed_and_named(prov: Signer, ctx: VerifyContext,
                                                 mutate: Any, needle: str) -> None:
    claims = prov.claims("status.request", jti="m-1")
    mutate(claims)
    out = rejected(run(prov.sign(claims), ctx), "malformed")
    assert f"claims.{needle}" in out.detail


def test_header_typ_other_than_jwt_is_malformed(prov: Signer, ctx: VerifyContext) -> None:
    header = {"alg": "EdDSA", "typ": "JOSE+JSON", "kid": prov.kid}
    out = rejected(run(prov.sign(prov.claims("status.request"), header), ctx), "malformed")
    assert "typ" in out.detail
    # typ is optional
    no_typ = prov.sign(prov.claims("status.request"), {"alg": "EdDSA", "kid": prov.kid})
    assert isinstance(run(no_typ, ctx), Command)


def test_duplicate_json_keys_are_malformed(prov: Signer, ctx: VerifyContext) -> None:
    h = b64url_encode(json.dumps({"alg": "EdDSA", "kid": prov.kid}).encode())
    body = (f'{{"iss":"vn-48","aud":"dev-0001","jti":"d-1","iat":{NOW},"exp":{NOW + 60},'
            '"cmd":"volume.set","args":{"level":5},"args":{"level":100}}')
    p = b64url_encode(body.encode())
    sig = prov.key.sign(f"{h}.{p}".encode())
    out = rejected(run(f"{h}.{p}.{b64url_encode(sig)}".encode(), ctx), "malformed")
    assert "duplicate key" in out.detail


def test_jti_and_cmd_echoed_even_when_header_is_broken(prov: Signer,
                                                       ctx: VerifyContext) -> None:
    good = prov.token("alert.start", VALID_ARGS["alert.start"], jti="echo-1")
    _, p, s = good.split(b".")
    out = rejected(run(b"!!!." + p + b"." + s, ctx), "malformed")
    assert (out.jti, out.cmd, out.verified_iat) == ("echo-1", "alert.start", None)


# --- step 2: bad_alg ------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES256", "eddsa"])
def test_other_algorithms_are_refused_before_key_lookup(prov: Signer, ctx: VerifyContext,
                                                        alg: str) -> None:
    claims = prov.claims("alert.start", VALID_ARGS["alert.start"], jti=f"alg-{alg}")
    # kid unknown too: bad_alg must win, as the key is never looked at.
    token = hand_token({"alg": alg, "typ": "JWT", "kid": "nobody"}, claims,
                       b"" if alg == "none" else b"\x01" * 32)
    out = rejected(run(token, ctx), "bad_alg")
    assert (out.jti, out.cmd) == (f"alg-{alg}", "alert.start")


def test_hs256_with_public_key_as_secret_is_refused(prov: Signer, ctx: VerifyContext) -> None:
    """The classic key-confusion attack: HMAC keyed with the (public) trust key."""
    import hmac

    h = b64url_encode(json.dumps({"alg": "HS256", "kid": prov.kid}).encode())
    p = b64url_encode(json.dumps(prov.claims("status.request")).encode())
    mac = hmac.new(prov.trust_key().public_key, f"{h}.{p}".encode(), "sha256").digest()
    rejected(run(f"{h}.{p}.{b64url_encode(mac)}".encode(), ctx), "bad_alg")


# --- step 3: unknown_key --------------------------------------------------------


def test_unknown_kid(ctx: VerifyContext) -> None:
    stranger = Signer.new("vn-99-rogue")
    out = rejected(run(stranger.token("status.request", jti="u-1"), ctx), "unknown_key")
    assert "vn-99-rogue" in out.detail and out.jti == "u-1" and out.verified_iat is None


# --- step 4: bad_signature ------------------------------------------------------


def test_signed_by_another_key_under_a_trusted_kid(prov: Signer, ctx: VerifyContext) -> None:
    forger = Signer.new(prov.kid)  # same kid, different private key
    out = rejected(run(forger.token("alert.start", VALID_ARGS["alert.start"], jti="f-1"), ctx),
                   "bad_signature")
    assert (out.jti, out.cmd, out.verified_iat) == ("f-1", "alert.start", None)


@pytest.mark.parametrize("part", [1, 2])
def test_one_flipped_bit_breaks_the_signature(prov: Signer, ctx: VerifyContext,
                                              part: int) -> None:
    parts = prov.token("volume.set", {"level": 10}).split(b".")
    raw = bytearray(b64url_decode(parts[part]))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = b64url_encode(bytes(raw)).encode()
    out = run(b".".join(parts), ctx)
    # Flipping a claims bit may also break the JSON; either way it is never accepted.
    assert isinstance(out, Rejection)
    assert out.code == "bad_signature" or (part == 1 and out.code == "malformed")


def test_flipped_bit_in_level_value_is_bad_signature(prov: Signer, ctx: VerifyContext) -> None:
    parts = prov.token("volume.set", {"level": 10}).split(b".")
    claims = b64url_decode(parts[1]).replace(b'"level":10', b'"level":11')
    parts[1] = b64url_encode(claims).encode()
    rejected(run(b".".join(parts), ctx), "bad_signature")


# --- step 5: wrong_audience -----------------------------------------------------


def test_topic_of_another_device(prov: Signer, ctx: VerifyContext) -> None:
    payload = prov.token("volume.set", {"level": 1}, aud="dev-0002")
    out = rejected(run(payload, ctx, "tcs/v1/dev/dev-0002/cmd"), "wrong_audience")
    assert out.verified_iat == NOW  # signature had verified


def test_group_we_are_not_in(prov: Signer, ctx: VerifyContext) -> None:
    payload = prov.token("volume.set", {"level": 1}, aud="vn-48-491")
    rejected(run(payload, ctx, "tcs/v1/grp/vn-48-491/cmd"), "wrong_audience")


def test_aud_not_matching_topic(prov: Signer, ctx: VerifyContext) -> None:
    # Signed for the whole province, replayed onto our device topic (or vice versa).
    payload = prov.token("volume.set", {"level": 1}, aud="vn-48")
    out = rejected(run(payload, ctx, DEV_TOPIC), "wrong_audience")
    assert "aud" in out.detail
    payload = prov.token("volume.set", {"level": 1}, aud=DEVICE)
    rejected(run(payload, ctx, "tcs/v1/grp/vn-48/cmd"), "wrong_audience")


def test_topic_audience() -> None:
    groups = frozenset({"vn-48"})
    assert topic_audience("tcs/v1/dev/dev-0001/cmd", "dev-0001", groups) == "dev-0001"
    assert topic_audience("tcs/v1/grp/vn-48/cmd", "dev-0001", groups) == "vn-48"
    for topic in ["tcs/v1/dev/dev-0002/cmd", "tcs/v1/grp/vn-49/cmd", "tcs/v1/dev/dev-0001/ack",
                  "tcs/v1/dev//cmd", "tcs/v1/dev/dev-0001/x/cmd", "tcs/v2/dev/dev-0001/cmd",
                  "tcs/v1/grp/dev-0001/cmd"]:
        assert topic_audience(topic, "dev-0001", groups) is None, topic


# --- step 6: expired ------------------------------------------------------------


def test_expired_with_trusted_clock(prov: Signer, ctx: VerifyContext) -> None:
    payload = prov.token("volume.set", {"level": 1}, iat=NOW - 600, exp=NOW - 31)
    out = rejected(run(payload, ctx), "expired")
    assert out.verified_iat == NOW - 600
    # Within the 30 s leeway it is still fine.
    ok = prov.token("volume.set", {"level": 1}, iat=NOW - 600, exp=NOW - 29)
    assert isinstance(run(ok, ctx), Command)


def test_untrusted_wrong_clock_does_not_reject_on_exp(prov: Signer, ctx: VerifyContext) -> None:
    # A Pi without RTC boots in 1970 or, with a stale fake-hwclock, years ahead.
    payload = prov.token("volume.set", {"level": 1}, iat=NOW, exp=NOW + 60)
    assert isinstance(run(payload, ctx, now=NOW + 10 * 365 * 86400, trusted=False), Command)
    assert isinstance(run(payload, ctx, now=0, trusted=False), Command)
    # The trusted clock at the same wrong time would reject it.
    rejected(run(payload, ctx, now=NOW + 10 * 365 * 86400, trusted=True), "expired")


def test_nan_clock_never_lets_an_expired_token_through(prov: Signer,
                                                       ctx: VerifyContext) -> None:
    old = prov.token("volume.set", {"level": 1}, iat=NOW - 7200, exp=NOW - 3600)
    rejected(run(old, ctx, now=float("nan"), trusted=True, lower=NOW), "expired")


def test_untrusted_clock_uses_the_verified_iat_lower_bound(prov: Signer,
                                                           ctx: VerifyContext) -> None:
    old = prov.token("volume.set", {"level": 1}, iat=NOW - 7200, exp=NOW - 3600)
    # A later verified command told us it is at least NOW: the old one is expired.
    rejected(run(old, ctx, now=0, trusted=False, lower=NOW), "expired")
    assert isinstance(run(old, ctx, now=0, trusted=False, lower=NOW - 7200), Command)


# --- step 7: replayed vs duplicate ----------------------------------------------


def test_same_token_again_is_duplicate(prov: Signer, ctx: VerifyContext) -> None:
    payload = prov.token("schedule.set", VALID_ARGS["schedule.set"], jti="s-7")
    first = run(payload, ctx)
    assert isinstance(first, Command)
    store = {first.jti: first.token_digest}
    again = run(payload, ctx, seen=store.get)
    assert again == Duplicate(jti="s-7", cmd="schedule.set", verified_iat=NOW)


def test_other_token_reusing_jti_is_replayed(prov: Signer, ctx: VerifyContext) -> None:
    first = run(prov.token("volume.set", {"level": 10}, jti="r-7"), ctx)
    assert isinstance(first, Command)
    store = {first.jti: first.token_digest}
    out = rejected(run(prov.token("volume.set", {"level": 100}, jti="r-7"), ctx, seen=store.get),
                   "replayed")
    assert (out.jti, out.verified_iat) == ("r-7", NOW)


def test_replay_check_comes_after_expiry(prov: Signer, ctx: VerifyContext) -> None:
    # The store forgets jtis once expired, so expiry must be what rejects an old replay.
    payload = prov.token("volume.set", {"level": 1}, jti="x-7", iat=NOW - 900, exp=NOW - 600)
    rejected(run(payload, ctx, seen=lambda j: "other"), "expired")


# --- step 8: not_allowed --------------------------------------------------------


def test_commune_key_cannot_raise_an_emergency() -> None:
    commune = Signer.new("vn-48-490-20194-ops")
    ctx = make_ctx([commune.trust_key(("schedule.set", "alert.*", "volume.set"), 49)])
    out = rejected(run(commune.token("alert.start", VALID_ARGS["alert.start"], jti="c-1"), ctx),
                   "not_allowed")
    assert "49" in out.detail and out.jti == "c-1"
    # Not even by asking for a low priority (alert.start is >= 90; it fails later
    # as bad_args if it gets past the key check, here it already cannot).
    low = dict(VALID_ARGS["alert.start"], priority=40)
    out2 = run(commune.token("alert.start", low), ctx)
    assert isinstance(out2, Rejection) and out2.code in ("not_allowed", "bad_args")
    # Nor through CAP.
    rejected(run(commune.token("alert.cap", VALID_ARGS["alert.cap"]), ctx), "not_allowed")
    # A normal programme is fine; a priority-band item is not.
    assert isinstance(run(commune.token("schedule.set", VALID_ARGS["schedule.set"]), ctx), Command)
    hi = {"version": 1, "items": [audio_item(priority=60)]}
    rejected(run(commune.token("schedule.set", hi), ctx), "not_allowed")


def test_command_glob_scope() -> None:
    signer = Signer.new("k")
    ctx = make_ctx([signer.trust_key(("alert.*", "status.request"), 100)])
    assert isinstance(run(signer.token("alert.stop", {"alert_id": "a"}), ctx), Command)
    assert isinstance(run(signer.token("status.request"), ctx), Command)
    out = rejected(run(signer.token("volume.set", {"level": 3}), ctx), "not_allowed")
    assert "volume.set" in out.detail
    # Globs are case-sensitive and anchored.
    rejected(run(signer.token("ALERT.stop", {"alert_id": "a"}), ctx), "not_allowed")
    rejected(run(signer.token("status.request.x"), ctx), "not_allowed")


# --- step 9: unknown_cmd, bad_args ----------------------------------------------


def test_unknown_command(prov: Signer, ctx: VerifyContext) -> None:
    out = rejected(run(prov.token("self.destruct", {}, jti="u-9"), ctx), "unknown_cmd")
    assert (out.cmd, out.verified_iat) == ("self.destruct", NOW)


def test_bad_args_names_the_field(prov: Signer, ctx: VerifyContext) -> None:
    items = [audio_item("a"), audio_item("b", media=[{"url": "https://x.vn/a", "sha256": "zz",
                                                      "size": 1, "type": "audio/mpeg"}])]
    out = rejected(run(prov.token("schedule.set", {"version": 1, "items": items}), ctx),
                   "bad_args")
    assert out.detail == "items[1].media[0].sha256: not 64 hex digits"


def test_detail_never_echoes_huge_input(prov: Signer, ctx: VerifyContext) -> None:
    out = rejected(run(prov.token("self." + "x" * 5000, {}), ctx), "unknown_cmd")
    assert len(out.detail) <= 200 and out.cmd is None  # too long to echo
    header = {"alg": "A" * 10000, "kid": "k"}
    out = rejected(run(hand_token(header, prov.claims("status.request")), ctx), "bad_alg")
    assert len(out.detail) <= 200


def test_order_signature_before_audience_before_args(prov: Signer, ctx: VerifyContext) -> None:
    forger = Signer.new(prov.kid)
    # Wrong audience AND bad args AND forged: signature is checked first.
    payload = forger.token("volume.set", {"level": 1000}, aud="dev-0002")
    rejected(run(payload, ctx, "tcs/v1/dev/dev-0002/cmd"), "bad_signature")
    payload = prov.token("volume.set", {"level": 1000}, aud="dev-0002")
    rejected(run(payload, ctx, "tcs/v1/dev/dev-0002/cmd"), "wrong_audience")


def test_standard_base64_padding_is_malformed(prov: Signer, ctx: VerifyContext) -> None:
    h, p, s = prov.token("status.request").split(b".")
    padded = base64.urlsafe_b64encode(b64url_decode(s))
    assert padded.endswith(b"=")
    rejected(run(h + b"." + p + b"." + padded, ctx), "malformed")


def test_replay_store_failure_propagates_instead_of_a_false_ack(prov: Signer,
                                                                ctx: VerifyContext) -> None:
    """A broken jti store is an I/O fault for the caller to retry, not a bad command."""

    def broken(_jti: str) -> str | None:
        raise OSError("database disk image is malformed")

    with pytest.raises(OSError, match="malformed"):
        run(prov.token("status.request"), ctx, seen=broken)
    # ...and it is only consulted once the signature verified.
    forged = Signer.new(prov.kid).token("status.request")
    rejected(run(forged, ctx, seen=broken), "bad_signature")
