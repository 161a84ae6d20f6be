"""Property-based fuzzing: no input makes the verifier raise, and nothing bad is accepted.

Every property also asserts the last-resort catch-all in agent/protocol.py was never
hit: a crafted payload must be refused by a real check, not by luck.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.protocol import DEVICE, NOW, VALID_ARGS, Signer, hand_token, make_ctx, no_jti

from agent.cap import CapAlert, CapCancel, CapRefusal, parse_cap
from agent.commands import KNOWN_COMMANDS, ArgsError, validate_args
from agent.jws import b64url_encode
from agent.protocol import Command, Duplicate, Outcome, Rejection, verify_command

FUZZ = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
CODES = {"malformed", "bad_alg", "unknown_key", "bad_signature", "wrong_audience", "expired",
         "replayed", "not_allowed", "unknown_cmd", "bad_args"}
TOPIC = f"tcs/v1/dev/{DEVICE}/cmd"

SIGNER = Signer.new("vn-48-emergency")
CTX = make_ctx([SIGNER.trust_key()])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


def check(out: Outcome) -> Outcome:
    assert isinstance(out, Command | Rejection | Duplicate)
    if isinstance(out, Rejection):
        assert out.code in CODES
        assert "internal verifier error" not in out.detail, out
        assert len(out.detail) <= 200
        assert out.jti is None or len(out.jti) <= 64
    return out


def verify(payload: bytes, topic: str = TOPIC, **kw: Any) -> Outcome:
    opts: dict[str, Any] = {"now": NOW, "clock_trusted": True, "time_lower_bound": 0.0,
                            "seen_jti": no_jti}
    opts.update(kw)
    return check(verify_command(payload, topic, CTX, **opts))


@FUZZ
@given(st.binary(max_size=2048), st.text(max_size=60), st.booleans(),
       st.floats(allow_nan=True), st.floats(allow_nan=True))
def test_arbitrary_bytes_never_raise(payload: bytes, topic: str, trusted: bool, now: float,
                                     lower: float) -> None:
    out = verify(payload, topic, clock_trusted=trusted, now=now, time_lower_bound=lower)
    assert isinstance(out, Rejection)


@FUZZ
@given(st.lists(st.binary(max_size=60) | st.sampled_from([b"", b"e30", b"W10", b"bnVsbA"]),
                min_size=1, max_size=5))
def test_arbitrary_dot_separated_parts_never_raise(parts: list[bytes]) -> None:
    assert isinstance(verify(b".".join(parts)), Rejection)


@FUZZ
@given(json_values, json_values)
def test_random_header_and_claims_shapes(header: Any, claims: Any) -> None:
    """Arbitrary JSON values as header and claims, signed with a trusted key."""
    out = verify(_signed(header, claims))
    assert isinstance(out, Rejection)


def _signed(header: Any, claims: Any) -> bytes:
    """Sign arbitrary JSON (even shapes sign_compact would not take) with the trusted key."""
    h = b64url_encode(json.dumps(header).encode())
    c = b64url_encode(json.dumps(claims).encode())
    sig = SIGNER.key.sign(f"{h}.{c}".encode())
    return f"{h}.{c}.{b64url_encode(sig)}".encode()


_ABSENT = object()
HEADER_CHOICES: dict[str, list[Any]] = {
    "alg": ["EdDSA", "EdDSA", "EdDSA", "none", "HS256"],
    "kid": [SIGNER.kid, SIGNER.kid, "other"],
    "typ": ["JWT", _ABSENT],
}
CLAIM_CHOICES: dict[str, list[Any]] = {
    "iss": ["vn-48"],
    "aud": [DEVICE, DEVICE, "vn-48", "dev-0002"],
    "jti": ["j-1", "j-2", "j-3", "x" * 64, "x" * 65, ""],
    "iat": [NOW, NOW, NOW, NOW - 10**6, True],
    "exp": [NOW + 60, NOW + 60, NOW + 60, NOW - 31, NOW - 29, 1.5],
    "cmd": [*sorted(KNOWN_COMMANDS), "nope"],
    "args": [{}, {"level": 5}, {"alert_id": "a", "text": "t"}],
}


def _assemble(data: st.DataObject, choices: dict[str, list[Any]], most: int) -> dict[str, Any]:
    """Mostly plausible values, with up to `most` fields replaced by random JSON or dropped."""
    broken = data.draw(st.just(set()) | st.sets(st.sampled_from(sorted(choices)),
                                                max_size=most))
    out: dict[str, Any] = {}
    for name, options in choices.items():
        value = (data.draw(json_values | st.just(_ABSENT)) if name in broken
                 else data.draw(st.sampled_from(options)))
        if value is not _ABSENT:
            out[name] = value
    return out


@FUZZ
@given(st.data())
def test_claims_assembled_from_valid_and_random_parts(data: st.DataObject) -> None:
    header = _assemble(data, HEADER_CHOICES, 1)
    claims = _assemble(data, CLAIM_CHOICES, 2)
    out = verify(_signed(header, claims))
    if isinstance(out, Command):
        assert header["alg"] == "EdDSA" and header["kid"] == SIGNER.kid
        assert claims["aud"] == DEVICE and claims["exp"] + 30 >= NOW
        assert isinstance(claims["iat"], int) and not isinstance(claims["iat"], bool)
        assert 0 < len(claims["jti"]) <= 64 and claims["cmd"] in KNOWN_COMMANDS


@FUZZ
@given(st.dictionaries(st.sampled_from(["iss", "aud", "jti", "iat", "exp", "cmd", "args",
                                        "alg", "kid", "typ", "crit", "extra"]), json_values,
                       max_size=4),
       st.booleans())
def test_valid_token_with_mutated_fields(overrides: dict[str, Any], in_header: bool) -> None:
    claims = SIGNER.claims("volume.set", {"level": 50})
    header: dict[str, Any] = {"alg": "EdDSA", "typ": "JWT", "kid": SIGNER.kid}
    (header if in_header else claims).update(overrides)
    try:
        payload = SIGNER.sign(claims, header)
    except (TypeError, ValueError):  # canonical_json cannot sort mixed keys etc.
        payload = hand_token(header, claims, b"\x00" * 64)
    out = verify(payload)
    if isinstance(out, Command):
        # Accepted only if it is still a well-typed command addressed to us.
        assert out.aud == DEVICE and out.cmd in KNOWN_COMMANDS
        assert isinstance(out.iat, int) and isinstance(out.exp, int)
        assert out.exp + 30 >= NOW


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _mutate(args: dict[str, Any], path: tuple[Any, ...], op: str, new: Any) -> Any:
    if not path:
        return new if op == "replace" else args
    parent: Any = args
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "add" and isinstance(parent, dict):
        parent[f"x_{last}"] = new
    else:
        parent[last] = new
    return args


@FUZZ
@given(st.data(), st.sampled_from(sorted(KNOWN_COMMANDS)),
       st.sampled_from(["replace", "delete", "add"]), json_values)
def test_random_args_for_every_command(data: st.DataObject, cmd: str, op: str,
                                       new: Any) -> None:
    args = copy.deepcopy(VALID_ARGS[cmd])
    path = data.draw(st.sampled_from(_paths(args)))
    mutated = _mutate(args, path, op, new)
    # The validator alone: a typed value or ArgsError, nothing else.
    try:
        validate_args(cmd, mutated)
    except ArgsError as exc:
        assert exc.detail and len(exc.detail) < 400
    # And through the verifier with a real signature.
    try:
        payload = SIGNER.token(cmd, mutated) if isinstance(mutated, dict) else None
    except (TypeError, ValueError):
        payload = None
    if payload is None:
        claims = SIGNER.claims(cmd)
        claims["args"] = mutated
        payload = hand_token({"alg": "EdDSA", "kid": SIGNER.kid}, claims, b"\x00" * 64)
    out = verify(payload)
    assert isinstance(out, Command) or (isinstance(out, Rejection) and out.code in (
        "bad_args", "malformed", "bad_signature")), out


@FUZZ
@given(st.data())
def test_cap_mutations_never_raise(data: st.DataObject) -> None:
    xml: str = VALID_ARGS["alert.cap"]["xml"]
    cut = data.draw(st.integers(0, len(xml)))
    insert = data.draw(st.text(max_size=30) | st.sampled_from(
        ["<!DOCTYPE a>", "&x;", "<info>", "</info>", "<expires>2000-01-01T00:00:00Z</expires>",
         "<msgType>Cancel</msgType>", "<references>a,b,c</references>", "\x00", "]]>"]))
    mutated = xml[:cut] + insert + xml[cut + data.draw(st.integers(0, 20)):]
    out = parse_cap(mutated, language=data.draw(st.sampled_from(["vi", "en", ""])),
                    play_test=data.draw(st.booleans()), play_exercise=False,
                    now=datetime.fromtimestamp(NOW, UTC))
    assert isinstance(out, CapAlert | CapCancel | CapRefusal)
    if isinstance(out, CapRefusal):
        assert out.code in ("bad_args", "expired") and out.detail


@FUZZ
@given(st.text(max_size=300))
def test_cap_arbitrary_text_never_raises(xml: str) -> None:
    out = parse_cap(xml, language="vi", play_test=True, play_exercise=True,
                    now=datetime.fromtimestamp(NOW, UTC))
    assert isinstance(out, CapRefusal)
