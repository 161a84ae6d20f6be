"""Claims and every --tamper variant: decoded, each has exactly the intended defect."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.central.sign import (
    TAMPERS,
    build_claims,
    decode_unverified,
    make_tokens,
    verify_eddsa,
)

NOW = 1_795_000_000


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def claims(aud: str = "dev-0001") -> dict[str, object]:
    return build_claims(iss="vn-48", aud=aud, cmd="volume.set", args={"level": 70},
                        now=NOW, ttl_s=300, jti="j-1")


def test_honest_token_has_protocol_header_and_claims(key: Ed25519PrivateKey) -> None:
    [tok] = make_tokens(key, "vn-48-emergency", claims(), None)
    header, got, _ = decode_unverified(tok.token)
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": "vn-48-emergency"}
    assert got == {"iss": "vn-48", "aud": "dev-0001", "jti": "j-1", "iat": NOW,
                   "exp": NOW + 300, "cmd": "volume.set", "args": {"level": 70}}
    assert verify_eddsa(tok.token, jws.public_raw(key)) == got
    other = jws.public_raw(Ed25519PrivateKey.generate())
    assert verify_eddsa(tok.token, other) is None


def test_signature_tamper_only_breaks_the_signature(key: Ed25519PrivateKey) -> None:
    [honest] = make_tokens(key, "k", claims(), None)
    [bad] = make_tokens(key, "k", claims(), "signature")
    assert bad.token.split(".")[:2] == honest.token.split(".")[:2]
    assert bad.token != honest.token
    assert verify_eddsa(bad.token, jws.public_raw(key)) is None


def test_expired_tamper_is_validly_signed_but_long_past(key: Ed25519PrivateKey) -> None:
    [tok] = make_tokens(key, "k", claims(), "expired")
    got = verify_eddsa(tok.token, jws.public_raw(key))
    assert got is not None
    assert got["exp"] < NOW - 30 - 600  # far beyond the device's 30 s leeway
    assert got["exp"] - got["iat"] == 300


def test_alg_none_is_unsigned(key: Ed25519PrivateKey) -> None:
    [tok] = make_tokens(key, "k", claims(), "alg-none")
    header, got, sig = decode_unverified(tok.token)
    assert header["alg"] == "none" and sig == b"" and tok.token.endswith(".")
    assert got == claims()


def test_hs256_is_hmac_keyed_with_the_public_key(key: Ed25519PrivateKey) -> None:
    [tok] = make_tokens(key, "k", claims(), "hs256")
    header, _, sig = decode_unverified(tok.token)
    assert header["alg"] == "HS256"
    signing_input = tok.token.rpartition(".")[0].encode()
    assert sig == hmac.new(jws.public_raw(key), signing_input, hashlib.sha256).digest()


def test_wrong_aud_is_valid_for_another_device(key: Ed25519PrivateKey) -> None:
    [tok] = make_tokens(key, "k", claims(), "wrong-aud", other_aud="dev-0002")
    got = verify_eddsa(tok.token, jws.public_raw(key))
    assert got is not None and got["aud"] == "dev-0002"
    with pytest.raises(ValueError, match="audience other than"):
        make_tokens(key, "k", claims(), "wrong-aud", other_aud="dev-0001")


def test_replay_reuses_the_jti_in_a_different_valid_token(key: Ed25519PrivateKey) -> None:
    first, second = make_tokens(key, "k", claims(), "replay")
    a = verify_eddsa(first.token, jws.public_raw(key))
    b = verify_eddsa(second.token, jws.public_raw(key))
    assert a is not None and b is not None
    assert a["jti"] == b["jti"] == "j-1"
    assert first.token != second.token  # so a device must say replayed, not duplicate


def test_every_tamper_is_covered() -> None:
    assert set(TAMPERS) == {"signature", "expired", "alg-none", "hs256", "wrong-aud", "replay"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"aud": "dev/+"}, "not a device or group id"), ({"jti": "x" * 65}, "jti must be"),
     ({"ttl_s": 0}, "ttl must be positive"), ({"jti": ""}, "jti must be")],
)
def test_bad_claims_are_named(kw: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"iss": "vn-48", "aud": "dev-0001", "cmd": "status.request",
                               "args": {}, "now": NOW, "ttl_s": 300, "jti": "j"}
    with pytest.raises(ValueError, match=message):
        build_claims(**{**base, **kw})  # type: ignore[arg-type]
