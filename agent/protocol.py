"""Command verification (PROTOCOL §3): bytes off the wire → Command | Rejection | Duplicate.

A pure function: no I/O and no clock reads. The caller passes the time, whether the
clock is trusted, the time lower bound it keeps (largest verified `iat`), and a
lookup into its durable jti store. The nine checks run exactly in the order of §3
and the first failure decides the reason code, because the province's console
shows that code to the operator and other implementations must agree on it.

Nothing in here raises for any payload: every failure of the input is a Rejection.
(Exceptions raised by the caller's `seen_jti` are the caller's and propagate.)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Final, Protocol

from agent import wire
from agent.commands import KNOWN_COMMANDS, ArgsError, priority_of, validate_args_warn
from agent.jws import b64url_decode, verify_ed25519
from agent.model import Args

MAX_PAYLOAD: Final = 256 * 1024
MAX_JTI: Final = 64
MAX_ECHO: Final = 64  # longest jti/cmd echoed back in an ack
MAX_DETAIL: Final = 200
MAX_TIME: Final = 2**53
DEV_PREFIX: Final = wire.DEV_PREFIX
GRP_PREFIX: Final = wire.GRP_PREFIX

_CLAIMS_STR: Final = ("iss", "aud", "jti", "cmd")
_CLAIMS_INT: Final = ("iat", "exp")


class TrustKeyLike(Protocol):
    """What the verifier needs of a configured trust key (agent.config.TrustKey fits)."""

    @property
    def kid(self) -> str: ...
    @property
    def public_key(self) -> bytes: ...  # raw 32-byte Ed25519
    @property
    def commands(self) -> tuple[str, ...]: ...  # glob patterns, e.g. "alert.*"
    @property
    def max_priority(self) -> int: ...


def _nothing_active(cmd: str, ident: str) -> int:
    return 0


# (cmd, alert_id | session_id) -> priority of that alert / live session now, 0 when
# none is active. PROTOCOL §3 step 8: a stop carries the priority of what it stops.
ActivePriority = Callable[[str, str], int]
STOP_COMMANDS: Final = {"alert.stop": "alert_id", "live.stop": "session_id"}


@dataclass(frozen=True)
class VerifyContext:
    device_id: str
    groups: frozenset[str]
    trust: Mapping[str, TrustKeyLike]  # kid -> key
    leeway_s: int = 30
    max_payload: int = MAX_PAYLOAD
    # The playout's view of what is sounding, for the priority of alert.stop/live.stop.
    active_priority: ActivePriority = _nothing_active
    # The cache quota: a declared media size above it is bad_args (never evicts first).
    max_media_bytes: int | None = None


@dataclass(frozen=True)
class Command:
    """A command that passed all nine checks: act on it."""

    jti: str
    cmd: str
    iss: str
    aud: str
    iat: int
    exp: int
    kid: str
    topic: str
    token_digest: str  # sha256 hex of the raw payload: the replay store keeps it
    args: Args
    priority: int
    warnings: tuple[str, ...]
    # The args object as signed, so what must outlive a restart (the schedule) can be
    # stored as received and validated again by the same code when it is loaded.
    raw_args: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Rejection:
    code: str  # malformed|bad_alg|unknown_key|bad_signature|wrong_audience|expired|
    #            replayed|not_allowed|unknown_cmd|bad_args
    detail: str
    jti: str | None  # echoed when readable, even unverified (§6.3)
    cmd: str | None
    # Set once the signature verified; informative only: it never moves the time floor.
    verified_iat: int | None


@dataclass(frozen=True)
class Duplicate:
    """The very same token seen again (a retained schedule after a restart): ack, ignore."""

    jti: str
    cmd: str
    verified_iat: int


Outcome = Command | Rejection | Duplicate


def topic_audience(topic: str, device_id: str, groups: frozenset[str]) -> str | None:
    """The device or group id a command topic is addressed to, if it is ours; else None."""
    for prefix, ok in ((DEV_PREFIX, lambda x: x == device_id), (GRP_PREFIX, groups.__contains__)):
        if topic.startswith(prefix) and topic.endswith("/cmd"):
            ident = topic[len(prefix) : -len("/cmd")]
            if ident and "/" not in ident and ok(ident):
                return ident
    return None


# ---------------------------------------------------------------------------
# step 1: framing and JSON


class _Malformed(Exception):
    pass


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice means two parsers could read two different commands out of
    # one signed token; refuse rather than pick one.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _Malformed(f"duplicate key {_short(key)!r}")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise _Malformed(f"{name} is not JSON")


def _json_object(part: bytes, what: str) -> dict[str, Any]:
    try:
        raw = b64url_decode(part)
    except ValueError:
        raise _Malformed(f"{what} is not base64url") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed(f"{what} is not UTF-8") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Malformed as exc:
        raise _Malformed(f"{what}: {exc}") from None
    except RecursionError:
        raise _Malformed(f"{what} JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and ints longer than Python accepts
        raise _Malformed(f"{what} is not JSON ({_short(str(exc), 60)})") from None
    if not isinstance(obj, dict):
        raise _Malformed(f"{what} is not a JSON object")
    return obj


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _echo(claims: Mapping[str, Any], key: str) -> str | None:
    value = claims.get(key)
    if isinstance(value, str) and 0 < len(value) <= MAX_ECHO:
        return value
    return None


@dataclass(frozen=True)
class _Parsed:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _parse(payload: bytes) -> tuple[_Parsed | None, str, dict[str, Any] | None]:
    """Step 1. Returns (parsed, "", claims) or (None, detail, claims-if-readable)."""
    parts = payload.split(b".")
    if len(parts) != 3:
        return None, f"not a compact JWS ({len(parts)} dot-separated parts, need 3)", None
    claims: dict[str, Any] | None = None
    try:
        claims = _json_object(parts[1], "claims")
    except _Malformed as exc:
        claims_problem: str | None = str(exc)
    else:
        claims_problem = None
    try:
        header = _json_object(parts[0], "header")
    except _Malformed as exc:
        return None, str(exc), claims
    if claims_problem is not None or claims is None:
        return None, claims_problem or "claims unreadable", None
    try:
        signature = b64url_decode(parts[2])
    except ValueError:
        return None, "signature is not base64url", claims

    for name in ("alg", "kid"):
        if not isinstance(header.get(name), str):
            return None, f"header.{name}: missing or not a string", claims
    if "typ" in header and header["typ"] != "JWT":
        return None, f"header.typ: {_short(repr(header['typ']))} is not \"JWT\"", claims
    if "crit" in header:
        # RFC 7515 §4.1.11: we understand no extensions, so we may not ignore them.
        return None, "header.crit: no critical extensions are supported", claims
    for name in _CLAIMS_STR:
        if not isinstance(claims.get(name), str):
            return None, f"claims.{name}: missing or not a string", claims
    if not 0 < len(claims["jti"]) <= MAX_JTI:
        return None, f"claims.jti: must be 1-{MAX_JTI} characters", claims
    for name in _CLAIMS_INT:
        if not _is_int(claims.get(name)):
            return None, f"claims.{name}: missing or not an integer", claims
        # Beyond 2**53 a JavaScript central cannot even have meant it exactly.
        if not 0 <= claims[name] <= MAX_TIME:
            return None, f"claims.{name}: not a Unix time (0-{MAX_TIME})", claims
    if not isinstance(claims.get("args"), dict):
        return None, "claims.args: missing or not an object", claims
    signing_input = parts[0] + b"." + parts[1]
    return _Parsed(header, claims, signing_input, signature), "", claims


# ---------------------------------------------------------------------------
# the nine steps


def _reject(code: str, detail: str, claims: Mapping[str, Any] | None,
            verified_iat: int | None = None) -> Rejection:
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 3] + "..."
    jti = _echo(claims, "jti") if claims is not None else None
    cmd = _echo(claims, "cmd") if claims is not None else None
    return Rejection(code=code, detail=detail, jti=jti, cmd=cmd, verified_iat=verified_iat)


def _steps_1_to_6(payload: bytes, topic: str, ctx: VerifyContext, now: float,
                  clock_trusted: bool, time_lower_bound: float
                  ) -> tuple[_Parsed, TrustKeyLike] | Rejection:
    if not isinstance(payload, bytes | bytearray | memoryview):
        return _reject("malformed", "payload is not bytes", None)
    # Size first, before a single byte is decoded (§3 step 1).
    if len(payload) > ctx.max_payload:
        return _reject("malformed", f"payload is {len(payload)} bytes, at most "
                                    f"{ctx.max_payload}", None)
    parsed, problem, claims = _parse(bytes(payload))
    if parsed is None:
        return _reject("malformed", problem, claims)
    header, claims = parsed.header, parsed.claims

    alg = header["alg"]
    if alg != "EdDSA":
        return _reject("bad_alg", f"alg {_short(alg)!r} is refused; only EdDSA", claims)

    kid = header["kid"]
    key = ctx.trust.get(kid)
    if key is None:
        return _reject("unknown_key", f"kid {_short(kid)!r} is not a configured trust key",
                       claims)

    if not verify_ed25519(bytes(key.public_key), parsed.signing_input, parsed.signature):
        return _reject("bad_signature", f"signature does not verify with key {_short(kid)!r}",
                       claims)
    iat: int = claims["iat"]

    ours = topic_audience(topic, ctx.device_id, ctx.groups)
    if ours is None:
        return _reject("wrong_audience", f"topic {_short(topic, 80)!r} is not this device's "
                                         "nor one of its groups'", claims, iat)
    if claims["aud"] != ours:
        return _reject("wrong_audience", f"aud {_short(claims['aud'])!r} does not match topic "
                                         f"id {ours!r}", claims, iat)

    exp: int = claims["exp"]
    # An untrusted clock may be years off (RTC-less Pi after a power cut): then the
    # only time we know is a lower bound, from signed iats, including this one.
    # A non-finite `now` is a caller bug; never let NaN make every comparison pass.
    if clock_trusted and math.isfinite(now):
        clock: float = now
    else:
        clock = max(time_lower_bound, iat) if math.isfinite(time_lower_bound) else iat
    if exp + ctx.leeway_s < clock:
        basis = "now" if clock == now else "the latest verified iat (clock untrusted)"
        return _reject("expired", f"exp {exp} is more than {ctx.leeway_s} s before {basis} "
                                  f"({int(clock)})", claims, iat)
    return parsed, key


def _priority(cmd: str, raw_args: Mapping[str, Any], ctx: VerifyContext) -> int:
    field_name = STOP_COMMANDS.get(cmd)
    if field_name is None:
        return priority_of(cmd, raw_args)
    ident = raw_args.get(field_name)
    return ctx.active_priority(cmd, ident) if isinstance(ident, str) else 0


def _steps_8_9(parsed: _Parsed, key: TrustKeyLike, topic: str, digest: str,
               ctx: VerifyContext) -> Outcome:
    claims = parsed.claims
    cmd: str = claims["cmd"]
    iat: int = claims["iat"]
    raw_args: dict[str, Any] = claims["args"]

    priority = _priority(cmd, raw_args, ctx)
    if not any(fnmatchcase(cmd, pattern) for pattern in key.commands):
        return _reject("not_allowed", f"key {_short(key.kid)!r} may not issue "
                                      f"{_short(cmd)!r}", claims, iat)
    if priority > key.max_priority:
        return _reject("not_allowed", f"key {_short(key.kid)!r} may issue at most priority "
                                      f"{key.max_priority}, this is {priority}", claims, iat)

    if cmd not in KNOWN_COMMANDS:
        return _reject("unknown_cmd", f"unknown command {_short(cmd)!r}", claims, iat)
    try:
        args, warnings = validate_args_warn(cmd, raw_args, max_media_bytes=ctx.max_media_bytes)
    except ArgsError as exc:
        return _reject("bad_args", exc.detail, claims, iat)
    return Command(jti=claims["jti"], cmd=cmd, iss=claims["iss"], aud=claims["aud"], iat=iat,
                   exp=claims["exp"], kid=key.kid, topic=topic, token_digest=digest, args=args,
                   priority=priority, warnings=warnings, raw_args=raw_args)


def _internal(exc: Exception) -> Rejection:
    # Last resort, so that a bug here can never take the agent down with a crafted
    # payload. The fuzz tests assert this text never appears.
    return _reject("malformed", f"internal verifier error: {type(exc).__name__}", None)


def verify_signed(payload: bytes, topic: str, ctx: VerifyContext
                  ) -> tuple[dict[str, Any], TrustKeyLike] | Rejection:
    """Steps 1-5 only (framing, alg, key, signature, audience) and `exp` against the
    token's own `iat`: for tokens that are not §4 commands and never come from the
    broker (the technician's `tcs-agent clock lower-floor`, agent/floorcli.py)."""
    try:
        first = _steps_1_to_6(payload, topic, ctx, 0.0, False, 0.0)
    except Exception as exc:
        return _internal(exc)
    if isinstance(first, Rejection):
        return first
    return first[0].claims, first[1]


def verify_command(payload: bytes, topic: str, ctx: VerifyContext, *, now: float,
                   clock_trusted: bool, time_lower_bound: float,
                   seen_jti: Callable[[str], str | None]) -> Outcome:
    """Run the §3 checks in order on one received payload.

    `now` is the wall clock (Unix seconds); `clock_trusted` whether it is synchronised;
    `time_lower_bound` the durable time floor (agent/timefloor.py); `seen_jti(jti)`
    the token digest stored for an accepted jti, or None.
    """
    try:
        first = _steps_1_to_6(payload, topic, ctx, now, clock_trusted, time_lower_bound)
    except Exception as exc:
        return _internal(exc)
    if isinstance(first, Rejection):
        return first
    parsed, key = first
    claims = parsed.claims
    digest = hashlib.sha256(bytes(payload)).hexdigest()

    # Step 7 asks the caller's store; its failures are I/O problems, not bad input.
    stored = seen_jti(claims["jti"])
    if stored is not None:
        if stored == digest:
            return Duplicate(jti=claims["jti"], cmd=claims["cmd"], verified_iat=claims["iat"])
        return _reject("replayed", f"jti {claims['jti']!r} was already used by another "
                                   "command", claims, claims["iat"])
    try:
        return _steps_8_9(parsed, key, topic, digest, ctx)
    except Exception as exc:
        return _internal(exc)
