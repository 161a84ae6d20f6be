"""Per-command argument validation (PROTOCOL §4-§5.3), pure.

`validate_args` turns the raw `args` object of a verified command into the typed
values of agent/model.py, or raises `ArgsError` whose detail names the offending
field by its path (`items[2].media[0].sha256: not 64 hex digits`), because the
province operator reading the ack must be able to fix the command without our logs.

Unknown fields are ignored (§4) but reported as warnings by `validate_args_warn`,
so a typo such as `volum` does not silently fall back to a default unnoticed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit

from dateutil.rrule import DAILY, MINUTELY, rrule, rrulestr
from packaging.version import InvalidVersion, Version

from agent import cap, wire
from agent.model import (
    COMMAND_NAMES,
    AgentRestart,
    AgentUpdate,
    AlertCap,
    AlertStart,
    AlertStop,
    Args,
    LiveStart,
    LiveStop,
    MediaPrefetch,
    MediaRef,
    ResumeMode,
    ScheduleItem,
    ScheduleSet,
    Slide,
    StatusRequest,
    TestRun,
    VolumeSet,
)
from agent.timeutil import parse_rfc3339

KNOWN_COMMANDS: Final[frozenset[str]] = frozenset(COMMAND_NAMES)

# §6.3: these get a second ack (`done` / `failed`) when they finish (agent/wire.py).
LONG_RUNNING: Final[frozenset[str]] = wire.LONG_RUNNING

DEFAULT_ITEM_PRIORITY: Final = 20
DEFAULT_ALERT_PRIORITY: Final = 100
DEFAULT_LIVE_PRIORITY: Final = 60
# A CAP message always becomes an emergency alert.start (agent/cap.py uses the
# alert.start default), so for the key-scope check (§3 step 8) alert.cap counts at
# that priority: a key limited to max_priority < 90 must not raise an emergency by
# wrapping it in CAP. §3 literally says "every other command 0"; this is the one
# place we are stricter, written down in docs/PROTOCOL-NOTES.md.
CAP_PRIORITY: Final = DEFAULT_ALERT_PRIORITY

MAX_ID_LEN: Final = 128
MAX_URL_LEN: Final = 2048
MAX_TEXT_LEN: Final = 16 * 1024
MAX_RRULE_LEN: Final = 1024
MAX_CAP_BYTES: Final = 200 * 1024
MAX_GAP_S: Final = 3600.0
# A slide's style goes to the display renderer and into storage as JSON: keep it shallow
# so no later json.dumps or renderer walk can hit Python's recursion limit.
MAX_STYLE_DEPTH: Final = 4
# Bounds on everything a command may make the device store or compute (issue 7:
# one schedule.set must not be able to brick a device). docs/PROTOCOL-NOTES.md
# lists them; each is far above what a real province sends.
MIN_YEAR: Final = 2000
MAX_YEAR: Final = 2100
MAX_WINDOW_S: Final = 86400
MAX_VERSION: Final = 2**53  # what a JavaScript central can still count exactly
MAX_ITEMS: Final = 200
MAX_MEDIA: Final = 32  # per item, per alert, per media.prefetch
MAX_SLIDES: Final = 64
MAX_RRULE_COUNT: Final = 2000
MAX_RRULE_INTERVAL: Final = 10000
MAX_WARNINGS: Final = 20  # unknown-field warnings listed in one ack; the rest counted
MAX_VERSION_LEN: Final = 64

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# §5.1 as changed 2026-12-01: a command names content over http(s) only (the signed
# hash makes http safe); file:// is for the technician's own CLI (agent/cache/cli.py).
_MEDIA_SCHEMES: Final = frozenset({"http", "https"})
_LIVE_SCHEMES: Final = frozenset({"http", "https", "rtsp", "icecast"})


class ArgsError(ValueError):
    """`args` are not valid for the command; `detail` names the field (§3 step 9, bad_args)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _short(value: Any, limit: int = 40) -> str:
    """repr() of a value, truncated: details go into acks and must stay small."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---------------------------------------------------------------------------
# lenient priority (§3 step 8): computed before args are validated


def _lenient_priority(raw: Any, default: int) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 100:
        return raw
    return default


def priority_of(cmd: str, raw_args: Any) -> int:
    """The priority a command is issued at, for the key-scope check (§3 step 8).

    Lenient on purpose: it runs before `args` are validated (step 9), so a bad
    value falls back to the default and the error is reported as bad_args later.
    """
    args: Mapping[str, Any] = raw_args if isinstance(raw_args, Mapping) else {}
    if cmd == "schedule.set":
        items = args.get("items")
        if not isinstance(items, list):
            return 0
        prios = [
            _lenient_priority(item.get("priority", DEFAULT_ITEM_PRIORITY), DEFAULT_ITEM_PRIORITY)
            for item in items
            if isinstance(item, Mapping)
        ]
        return max(prios, default=0)
    if cmd == "alert.start":
        return _lenient_priority(args.get("priority", DEFAULT_ALERT_PRIORITY),
                                 DEFAULT_ALERT_PRIORITY)
    if cmd == "alert.cap":
        return CAP_PRIORITY
    if cmd == "live.start":
        return _lenient_priority(args.get("priority", DEFAULT_LIVE_PRIORITY),
                                 DEFAULT_LIVE_PRIORITY)
    return 0


# ---------------------------------------------------------------------------
# field readers: each takes the containing object and returns a typed value


class _Notes(list[str]):
    """The warnings list every reader appends to, carrying what one validation needs
    besides: the device's media size limit and how many warnings were left off."""

    def __init__(self, max_media_bytes: int | None) -> None:
        super().__init__()
        self.max_media_bytes = max_media_bytes
        self.overflow = 0


class _Reader:
    """Reads the fields of one JSON object, remembering which ones were used.

    Small helper so that every error carries the full path and unknown fields can
    be listed as warnings afterwards.
    """

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise ArgsError(f"{path or 'args'}: not an object")
        self.raw: Mapping[str, Any] = raw
        self.path = path
        self.used: set[str] = set()

    def p(self, key: str) -> str:
        return _join(self.path, key)

    def has(self, key: str) -> bool:
        self.used.add(key)
        return key in self.raw

    def get(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.raw:
            raise ArgsError(f"{self.p(key)}: missing")
        return self.raw[key]

    def unknown(self, warnings: list[str]) -> None:
        for key in self.raw:
            if key not in self.used:
                if len(warnings) >= MAX_WARNINGS and isinstance(warnings, _Notes):
                    warnings.overflow += 1  # bounded: the rest are only counted
                else:
                    warnings.append(f"{self.p(str(key))[:80]}: unknown field ignored")

    # typed accessors ---------------------------------------------------

    def int_(self, key: str, lo: int, hi: int | None = None, default: int | None = None) -> int:
        if default is not None and not self.has(key):
            return default
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ArgsError(f"{self.p(key)}: {_short(value)} is not an integer")
        if value < lo or (hi is not None and value > hi):
            bounds = f"{lo}-{hi}" if hi is not None else f">= {lo}"
            raise ArgsError(f"{self.p(key)}: {value} is out of range ({bounds})")
        return value

    def number(self, key: str, *, lo: float, hi: float, default: float | None = None,
               lo_open: bool = False) -> float:
        if default is not None and not self.has(key):
            return default
        value = self.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ArgsError(f"{self.p(key)}: {_short(value)} is not a number")
        num = float(value)
        if not math.isfinite(num) or num > hi or num < lo or (lo_open and num <= lo):
            rel = ">" if lo_open else ">="
            raise ArgsError(f"{self.p(key)}: {_short(value)} must be {rel} {lo:g} and <= {hi:g}")
        return num

    def bool_(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.get(key)
        if not isinstance(value, bool):
            raise ArgsError(f"{self.p(key)}: {_short(value)} is not true or false")
        return value

    def str_(self, key: str, *, max_len: int, default: str | None = None,
             non_empty: bool = True) -> str:
        if default is not None and not self.has(key):
            return default
        value = self.get(key)
        if not isinstance(value, str):
            raise ArgsError(f"{self.p(key)}: {_short(value)} is not a string")
        if non_empty and not value.strip():
            raise ArgsError(f"{self.p(key)}: empty")
        if len(value) > max_len:
            raise ArgsError(f"{self.p(key)}: {len(value)} characters, at most {max_len}")
        return value

    def id_(self, key: str) -> str:
        return self.str_(key, max_len=MAX_ID_LEN)

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        if default is not None and not self.has(key):
            return default
        value = self.get(key)
        if value not in choices or not isinstance(value, str):
            raise ArgsError(f"{self.p(key)}: {_short(value)} is not one of {', '.join(choices)}")
        return value

    def time(self, key: str) -> datetime:
        value = self.get(key)
        try:
            when = parse_rfc3339(value)
        except (ValueError, TypeError):
            raise ArgsError(
                f"{self.p(key)}: {_short(value)} is not an RFC 3339 time with offset"
            ) from None
        if not MIN_YEAR <= when.year <= MAX_YEAR:
            raise ArgsError(f"{self.p(key)}: year {when.year} is outside {MIN_YEAR}-{MAX_YEAR}")
        return when

    def opt_time(self, key: str) -> datetime | None:
        return self.time(key) if self.has(key) else None

    def url(self, key: str, schemes: frozenset[str]) -> str:
        value = self.str_(key, max_len=MAX_URL_LEN)
        try:
            parts = urlsplit(value)
        except ValueError:
            raise ArgsError(f"{self.p(key)}: {_short(value)} is not a URL") from None
        scheme = parts.scheme.lower()
        if scheme not in schemes:
            raise ArgsError(
                f"{self.p(key)}: scheme {scheme or '(none)'!r} not allowed "
                f"(use {', '.join(sorted(schemes))})"
            )
        if scheme != "file" and not parts.netloc:
            raise ArgsError(f"{self.p(key)}: {_short(value)} has no host")
        if scheme == "file" and not parts.path:
            raise ArgsError(f"{self.p(key)}: {_short(value)} has no path")
        return value

    def list_(self, key: str, *, non_empty: bool, max_len: int) -> list[Any]:
        value = self.get(key)
        if not isinstance(value, list):
            raise ArgsError(f"{self.p(key)}: not a list")
        if non_empty and not value:
            raise ArgsError(f"{self.p(key)}: empty list")
        if len(value) > max_len:
            raise ArgsError(f"{self.p(key)}: {len(value)} entries, at most {max_len}")
        return value


def _media_ref(raw: Any, path: str, warnings: list[str]) -> MediaRef:
    r = _Reader(raw, path)
    url = r.url("url", _MEDIA_SCHEMES)
    sha = r.get("sha256")
    if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
        raise ArgsError(f"{r.p('sha256')}: not 64 hex digits")
    # A file larger than the whole cache can never be stored: refused here, before
    # the cache would evict everything unpinned trying to make room for it.
    size = r.int_("size", 0, getattr(warnings, "max_media_bytes", None))
    mime = r.str_("type", max_len=255)
    r.unknown(warnings)
    return MediaRef(url=url, sha256=sha.lower(), size=size, type=mime)


def _media_list(r: _Reader, key: str, warnings: list[str], *, non_empty: bool
                ) -> tuple[MediaRef, ...]:
    raw = r.list_(key, non_empty=non_empty, max_len=MAX_MEDIA)
    return tuple(_media_ref(m, f"{r.p(key)}[{i}]", warnings) for i, m in enumerate(raw))


# ---------------------------------------------------------------------------
# schedule.set


def _slide(raw: Any, path: str, warnings: list[str]) -> Slide:
    r = _Reader(raw, path)
    duration = r.number("duration_s", lo=0.0, hi=86400.0, lo_open=True)
    has_media, has_text = r.has("media"), r.has("text")
    if has_media == has_text:
        raise ArgsError(f"{path}: needs exactly one of media or text")
    media = _media_ref(r.get("media"), r.p("media"), warnings) if has_media else None
    text = r.str_("text", max_len=MAX_TEXT_LEN) if has_text else None
    style: dict[str, Any] = {}
    if r.has("style"):
        raw_style = r.get("style")
        if not isinstance(raw_style, dict):
            raise ArgsError(f"{r.p('style')}: not an object")
        if _depth(raw_style) > MAX_STYLE_DEPTH:
            raise ArgsError(f"{r.p('style')}: nested deeper than {MAX_STYLE_DEPTH}")
        style = raw_style
    r.unknown(warnings)
    return Slide(duration_s=duration, media=media, text=text, style=style)


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion (it may be arbitrarily deep)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, level = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_STYLE_DEPTH:  # no need to look further down
                todo.extend((v, level + 1) for v in (
                    node.values() if isinstance(node, dict) else node))
    return deepest


def _check_rrule(rule: str, start: datetime, path: str) -> None:
    """Parse the rule the way the scheduler will (start as DTSTART) so errors surface now,
    and bound what evaluating it can cost (FREQ at most MINUTELY, COUNT, INTERVAL, UNTIL)."""
    if "DTSTART" in rule.upper():
        raise ArgsError(f"{path}: must not contain DTSTART (start gives it)")
    if "\n" in rule or "\r" in rule:
        raise ArgsError(f"{path}: one rule only, no line breaks")
    upper = rule.upper()
    if "BYEASTER" in upper:
        raise ArgsError(f"{path}: BYEASTER is not RFC 5545")
    if "COUNT=" in upper and "UNTIL=" in upper:
        raise ArgsError(f"{path}: COUNT and UNTIL must not both be given (RFC 5545)")
    try:
        parsed = rrulestr(rule, dtstart=start)
    except Exception as exc:  # dateutil raises ValueError, TypeError, ... on odd rules
        raise ArgsError(f"{path}: not an RFC 5545 rule ({str(exc)[:80]})") from None
    if not isinstance(parsed, rrule):
        raise ArgsError(f"{path}: one RRULE only")
    # dateutil's parsed fields (stable private attributes since 2.7).
    if parsed._freq > MINUTELY:  # type: ignore[attr-defined]
        raise ArgsError(f"{path}: FREQ=SECONDLY is not allowed (at most MINUTELY)")
    if parsed._bysetpos and parsed._freq >= DAILY:  # type: ignore[attr-defined]
        # Selecting within a day's (or shorter) set is not what a programme needs, and
        # a position beyond the set makes dateutil build and discard a set per period.
        raise ArgsError(f"{path}: BYSETPOS needs FREQ=WEEKLY, MONTHLY or YEARLY")
    seconds = parsed._bysecond or ()  # type: ignore[attr-defined]
    if len(seconds) > 1:
        raise ArgsError(f"{path}: BYSECOND may name one second only (at most one a minute)")
    count = parsed._count  # type: ignore[attr-defined]
    if count is not None and count > MAX_RRULE_COUNT:
        raise ArgsError(f"{path}: COUNT {count} is above {MAX_RRULE_COUNT}")
    if count is not None and parsed._freq > DAILY:  # type: ignore[attr-defined]
        # A COUNT is walked from DTSTART once (agent/scheduler/occurrences.py); by the
        # minute that walk is what a device cannot afford. UNTIL says the same.
        raise ArgsError(f"{path}: COUNT needs FREQ=DAILY or longer (use UNTIL)")
    if parsed._interval > MAX_RRULE_INTERVAL:  # type: ignore[attr-defined]
        raise ArgsError(f"{path}: INTERVAL is above {MAX_RRULE_INTERVAL}")
    until = parsed._until  # type: ignore[attr-defined]
    if until is not None and not MIN_YEAR <= until.year <= MAX_YEAR:
        raise ArgsError(f"{path}: UNTIL year {until.year} is outside {MIN_YEAR}-{MAX_YEAR}")


def _schedule_item(raw: Any, path: str, warnings: list[str]) -> ScheduleItem:
    r = _Reader(raw, path)
    item_id = r.id_("id")
    kind = r.choice("kind", ("audio", "slides"))
    media: tuple[MediaRef, ...] = ()
    slides: tuple[Slide, ...] = ()
    if kind == "audio":
        media = _media_list(r, "media", warnings, non_empty=True)
    else:
        raw_slides = r.list_("slides", non_empty=True, max_len=MAX_SLIDES)
        slides = tuple(
            _slide(s, f"{r.p('slides')}[{i}]", warnings) for i, s in enumerate(raw_slides)
        )
    start = r.time("start")
    rule: str | None = None
    if r.has("rrule"):
        rule = r.str_("rrule", max_len=MAX_RRULE_LEN)
        _check_rrule(rule, start, r.p("rrule"))
    until = r.opt_time("until")
    if until is not None and until < start:
        raise ArgsError(f"{r.p('until')}: before start")
    item = ScheduleItem(
        id=item_id,
        kind=cast(Literal["audio", "slides"], kind),
        start=start,
        media=media,
        slides=slides,
        rrule=rule,
        until=until,
        window_s=r.int_("window_s", 0, MAX_WINDOW_S, default=300),
        priority=r.int_("priority", 0, 100, default=DEFAULT_ITEM_PRIORITY),
        volume=r.int_("volume", 0, 100, default=100),
        resume=cast(ResumeMode, r.choice("resume", ("join", "restart", "drop"), default="join")),
    )
    r.unknown(warnings)
    return item


def _schedule_set(r: _Reader, warnings: list[str]) -> ScheduleSet:
    version = r.int_("version", 0, MAX_VERSION)
    raw_items = r.list_("items", non_empty=False, max_len=MAX_ITEMS)
    items: list[ScheduleItem] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_items):
        item = _schedule_item(raw, f"items[{i}]", warnings)
        if item.id in seen:
            raise ArgsError(f"items[{i}].id: duplicate {_short(item.id)}")
        seen.add(item.id)
        items.append(item)
    return ScheduleSet(version=version, items=tuple(items))


# ---------------------------------------------------------------------------
# the other commands


def _alert_start(r: _Reader, warnings: list[str]) -> AlertStart:
    alert_id = r.id_("alert_id")
    media = _media_list(r, "media", warnings, non_empty=False) if r.has("media") else ()
    text = r.str_("text", max_len=MAX_TEXT_LEN) if r.has("text") else None
    if not media and text is None:
        raise ArgsError("media/text: an alert needs media, text or both")
    return AlertStart(
        alert_id=alert_id,
        media=media,
        text=text,
        lang=_lang(r),
        priority=r.int_("priority", 90, 100, default=DEFAULT_ALERT_PRIORITY),
        repeat=r.int_("repeat", 1, 100, default=3),
        gap_s=r.number("gap_s", lo=0.0, hi=MAX_GAP_S, default=5.0),
        chime=r.bool_("chime", True),
        volume=r.int_("volume", 0, 100, default=100),
        until=r.opt_time("until"),
    )


_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def _lang(r: _Reader) -> str:
    # It becomes an espeak-ng voice name: a BCP 47-shaped tag, nothing else. An
    # unknown one is not an error (the alert falls back to the configured voice).
    lang = r.str_("lang", max_len=35, default="vi")
    if not _LANG.fullmatch(lang):
        raise ArgsError(f"lang: {_short(lang)} is not a language tag such as vi or vi-VN")
    return lang


def _alert_cap(r: _Reader, warnings: list[str]) -> AlertCap:
    xml = r.str_("xml", max_len=MAX_CAP_BYTES)
    size = len(xml.encode("utf-8", "surrogatepass"))
    if size > MAX_CAP_BYTES:
        raise ArgsError(f"xml: {size} bytes, at most {MAX_CAP_BYTES}")
    try:
        cap.check_cap(xml)
    except cap.CapError as exc:
        raise ArgsError(f"xml: {exc.detail}") from None
    return AlertCap(xml=xml)


def _live_start(r: _Reader, warnings: list[str]) -> LiveStart:
    return LiveStart(
        session_id=r.id_("session_id"),
        url=r.url("url", _LIVE_SCHEMES),
        priority=r.int_("priority", 0, 100, default=DEFAULT_LIVE_PRIORITY),
        until=r.opt_time("until"),
    )


def _agent_update(r: _Reader, warnings: list[str]) -> AgentUpdate:
    text = r.str_("version", max_len=MAX_VERSION_LEN)
    try:
        Version(text)
    except InvalidVersion:
        raise ArgsError(f"version: {_short(text)} is not a PEP 440 version") from None
    return AgentUpdate(
        version=text,
        bundle=_media_ref(r.get("bundle"), "bundle", warnings),
        allow_downgrade=r.bool_("allow_downgrade", False),
    )


_Builder = Callable[[_Reader, list[str]], Args]

_BUILDERS: Final[Mapping[str, _Builder]] = {
    "schedule.set": _schedule_set,
    "alert.start": _alert_start,
    "alert.stop": lambda r, w: AlertStop(alert_id=r.id_("alert_id")),
    "alert.cap": _alert_cap,
    "live.start": _live_start,
    "live.stop": lambda r, w: LiveStop(session_id=r.id_("session_id")),
    "volume.set": lambda r, w: VolumeSet(level=r.int_("level", 0, 100)),
    "media.prefetch": lambda r, w: MediaPrefetch(media=_media_list(r, "media", w, non_empty=True)),
    "status.request": lambda r, w: StatusRequest(),
    "test.run": lambda r, w: TestRun(
        what=cast(Literal["speaker", "display"], r.choice("what", ("speaker", "display")))
    ),
    "agent.restart": lambda r, w: AgentRestart(),
    "agent.update": _agent_update,
}


def validate_args_warn(cmd: str, raw_args: Any, *, max_media_bytes: int | None = None
                       ) -> tuple[Args, tuple[str, ...]]:
    """Like `validate_args`, also returning warnings (unknown fields that were ignored,
    at most MAX_WARNINGS of them listed plus one line counting the rest)."""
    builder = _BUILDERS.get(cmd)
    if builder is None:
        raise ArgsError(f"unknown command {_short(cmd)}")
    warnings = _Notes(max_media_bytes)
    reader = _Reader(raw_args, "")
    args = builder(reader, warnings)
    reader.unknown(warnings)
    if warnings.overflow:
        warnings.append(f"{warnings.overflow} more unknown fields ignored")
    return args, tuple(warnings)


def validate_args(cmd: str, raw_args: Any, *, max_media_bytes: int | None = None) -> Args:
    """Typed args for a known command, or ArgsError naming the bad field."""
    return validate_args_warn(cmd, raw_args, max_media_bytes=max_media_bytes)[0]
