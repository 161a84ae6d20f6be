"""CAP 1.2 (OASIS Common Alerting Protocol) → alert actions (PROTOCOL §5.4), pure.

Parsing uses the standard library's expat with every door that could reach
outside the document shut: a DOCTYPE of any kind, entity declarations, external
entity references and XInclude elements are refused outright (bad_args), and no
handler ever opens a file or a socket. Refusing any DTD also rules out the
"billion laughs" expansion, which needs entity declarations. defusedxml would do
the same; plain expat avoids a dependency for a ~40-line tree builder.

`check_cap` is the structural check run while the command is verified (§3 step 9);
`parse_cap` is the mapping the dispatcher runs with the device's settings and the
current time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal
from xml.parsers import expat

from agent.model import AlertStart, AlertStop, MediaRef
from agent.timeutil import parse_rfc3339

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
XINCLUDE_NS: Final = "http://www.w3.org/2001/XInclude"
MAX_XML_BYTES: Final = 200 * 1024
MAX_DEPTH: Final = 64
MAX_TEXT: Final = 16 * 1024  # longest alert text handed to the TTS voice

_STATUSES: Final = ("Actual", "Exercise", "System", "Test", "Draft")
_MSG_TYPES: Final = ("Alert", "Update", "Cancel", "Ack", "Error")
_WS = re.compile(r"\s+")
# Unlike the rest of CAP, the alert id goes into acks and proofs: keep it bounded.
MAX_ALERT_ID: Final = 128


class CapError(ValueError):
    """The document is unsafe or not CAP 1.2; `detail` says why (→ bad_args)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class CapAlert:
    """Alert or Update: start (or replace) an emergency alert."""

    alert: AlertStart
    replaces: tuple[str, ...] = ()  # alert ids an Update supersedes: stop them first
    # Audio carried inside the CAP (derefUri), keyed by sha256 hex: the cache must
    # store these bytes, since the MediaRef's url may not be fetchable.
    inline: dict[str, bytes] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    status: str = "Actual"
    msg_type: str = "Alert"


@dataclass(frozen=True)
class CapCancel:
    """Cancel: stop the referenced alerts."""

    stops: tuple[AlertStop, ...]
    warnings: tuple[str, ...] = ()
    status: str = "Actual"


@dataclass(frozen=True)
class CapRefusal:
    code: Literal["bad_args", "expired"]
    detail: str


CapAction = CapAlert | CapCancel | CapRefusal


# ---------------------------------------------------------------------------
# safe XML → small tree


@dataclass
class _Node:
    ns: str
    name: str
    parts: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    def cap_children(self, name: str) -> list[_Node]:
        return [c for c in self.children if c.ns == CAP_NS and c.name == name]

    def first(self, name: str) -> str | None:
        found = self.cap_children(name)
        return found[0].text if found else None


class _Forbidden(Exception):
    pass


def _split(tag: str) -> tuple[str, str]:
    ns, sep, name = tag.rpartition(" ")
    return (ns, name) if sep else ("", tag)


def _parse_tree(xml: str) -> _Node:
    data = xml.encode("utf-8", "surrogatepass")
    if len(data) > MAX_XML_BYTES:
        raise CapError(f"CAP document is {len(data)} bytes, at most {MAX_XML_BYTES}")
    # The encoding override makes expat ignore a lying `encoding=` declaration: we
    # were handed text, and its UTF-8 bytes are what we parse.
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    root: list[_Node] = []
    stack: list[_Node] = []

    def forbid(what: str) -> None:
        raise _Forbidden(what)

    def start(tag: str, _attrs: dict[str, str]) -> None:
        ns, name = _split(tag)
        if ns == XINCLUDE_NS:
            forbid("XInclude is not allowed")
        if len(stack) >= MAX_DEPTH:
            forbid(f"elements nested deeper than {MAX_DEPTH}")
        node = _Node(ns, name)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1].parts.append(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = lambda *a: forbid("a DTD (DOCTYPE) is not allowed")
    parser.EntityDeclHandler = lambda *a: forbid("entity declarations are not allowed")
    parser.UnparsedEntityDeclHandler = lambda *a: forbid("entity declarations are not allowed")
    parser.NotationDeclHandler = lambda *a: forbid("notation declarations are not allowed")

    def external(*_args: object) -> int:
        forbid("external entities are not allowed")
        return 0  # not reached; expat wants an int

    parser.ExternalEntityRefHandler = external
    try:
        parser.Parse(data, True)
    except _Forbidden as exc:
        raise CapError(str(exc)) from None
    except expat.ExpatError as exc:
        raise CapError(f"not well-formed XML ({expat.ErrorString(exc.code)}, "
                       f"line {exc.lineno})") from None
    if not root:
        raise CapError("no root element")
    return root[0]


# ---------------------------------------------------------------------------
# CAP structure


@dataclass(frozen=True)
class _Alert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    references: tuple[str, ...]  # alert ids (cap:<sender>:<identifier>)
    infos: tuple[_Node, ...]


def alert_id_for(sender: str, identifier: str) -> str:
    """The alert.start id a CAP message maps to (§5.4)."""
    return f"cap:{sender}:{identifier}"


def _required(node: _Node, name: str) -> str:
    value = node.first(name)
    if not value:
        raise CapError(f"alert.{name}: missing")
    return value


def _parse_references(text: str) -> tuple[str, ...]:
    """CAP `references`: space-separated `sender,identifier,sent` triples."""
    ids: list[str] = []
    for entry in text.split():
        fields = entry.split(",")
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise CapError(f"alert.references: {entry[:60]!r} is not sender,identifier,sent")
        ids.append(alert_id_for(fields[0], fields[1]))
    return tuple(ids)


def _structure(xml: str) -> _Alert:
    root = _parse_tree(xml)
    if root.name != "alert" or root.ns != CAP_NS:
        found = f"{{{root.ns}}}{root.name}" if root.ns else root.name
        raise CapError(f"root element is {found[:80]}, not a CAP 1.2 alert ({CAP_NS})")
    identifier = _required(root, "identifier")
    sender = _required(root, "sender")
    for name, value in (("identifier", identifier), ("sender", sender)):
        if any(c.isspace() or c in ",<&" for c in value):
            raise CapError(f"alert.{name}: must not contain spaces, commas, < or &")
    sent_text = _required(root, "sent")
    try:
        sent = parse_rfc3339(sent_text)
    except ValueError:
        raise CapError(f"alert.sent: {sent_text[:40]!r} is not a date-time with offset") from None
    status = _required(root, "status")
    if status not in _STATUSES:
        raise CapError(f"alert.status: {status[:20]!r} is not one of {', '.join(_STATUSES)}")
    msg_type = _required(root, "msgType")
    if msg_type not in _MSG_TYPES:
        raise CapError(f"alert.msgType: {msg_type[:20]!r} is not one of {', '.join(_MSG_TYPES)}")
    refs_text = root.first("references")
    references = _parse_references(refs_text) if refs_text else ()
    if len(alert_id_for(sender, identifier)) > MAX_ALERT_ID:
        raise CapError(f"alert.sender + identifier: longer than {MAX_ALERT_ID} characters")
    return _Alert(identifier, sender, sent, status, msg_type, references,
                  tuple(root.cap_children("info")))


def check_cap(xml: str) -> None:
    """Raise CapError unless `xml` is a safe, structurally valid CAP 1.2 alert.

    Run during command verification so that a broken CAP is acked bad_args at once.
    """
    _structure(xml)


# ---------------------------------------------------------------------------
# mapping (§5.4)


def _lang_matches(info_lang: str, language: str) -> bool:
    a, b = info_lang.lower(), language.lower()
    return a == b or a.startswith(b + "-") or b.startswith(a + "-")


def _info_language(info: _Node) -> str:
    # CAP 1.2: an info without <language> is "en-US".
    return info.first("language") or "en-US"


def _resources(info: _Node, warnings: list[str]) -> tuple[tuple[MediaRef, ...], dict[str, bytes]]:
    media: list[MediaRef] = []
    inline: dict[str, bytes] = {}
    for i, res in enumerate(info.cap_children("resource")):
        where = f"resource[{i}]"
        mime = res.first("mimeType") or ""
        if not mime.lower().startswith("audio/"):
            warnings.append(f"{where}: {mime[:40] or 'no mimeType'} is not audio, ignored")
            continue
        uri = res.first("uri") or ""
        deref = res.first("derefUri")
        if deref is None:
            warnings.append(
                f"{where}: audio by uri only has no sha256 to check it against, not played"
            )
            continue
        try:
            data = base64.b64decode(_WS.sub("", deref), validate=True)
        except (binascii.Error, ValueError):
            warnings.append(f"{where}: derefUri is not base64, ignored")
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        digest = res.first("digest")
        if digest and digest.lower() != hashlib.sha1(data).hexdigest():
            warnings.append(f"{where}: CAP digest does not match the derefUri content")
        size_text = res.first("size")
        if size_text and size_text != str(len(data)):
            warnings.append(
                f"{where}: CAP size {size_text[:20]} but derefUri holds {len(data)} bytes"
            )
        # The bytes travel in `inline`; the url is only informative (uri when given).
        url = uri if uri.lower().startswith(("http://", "https://")) else f"cap-deref:{sha256}"
        media.append(MediaRef(url=url, sha256=sha256, size=len(data), type=mime))
        inline[sha256] = data
    return tuple(media), inline


def _text(info: _Node) -> str | None:
    parts = [info.first(n) for n in ("headline", "description", "instruction")]
    clean = [_WS.sub(" ", p).strip() for p in parts if p]
    text = "\n".join(p for p in clean if p)
    return text[:MAX_TEXT] or None


def _status_refusal(status: str, play_test: bool, play_exercise: bool) -> CapRefusal | None:
    if status == "Actual":
        return None
    if status == "Test" and play_test:
        return None
    if status == "Exercise" and play_exercise:
        return None
    if status in ("Test", "Exercise"):
        setting = "play_cap_test" if status == "Test" else "play_cap_exercise"
        return CapRefusal("bad_args", f"CAP status {status} is not played ([alerts] {setting} "
                                      "is off)")
    return CapRefusal("bad_args", f"CAP status {status} is never played")


def parse_cap(xml: str, *, language: str, play_test: bool, play_exercise: bool,
              now: datetime) -> CapAction:
    """Map a CAP 1.2 message to what the device should do (§5.4).

    `language` is the device's alert language ("vi" matches "vi-VN"); `now` an aware
    datetime (the trusted time); play_test / play_exercise the [alerts] settings.
    Never raises for any `xml`; an unusable message is a CapRefusal.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    try:
        alert = _structure(xml)
    except CapError as exc:
        return CapRefusal("bad_args", exc.detail)
    refusal = _status_refusal(alert.status, play_test, play_exercise)
    if refusal is not None:
        return refusal
    if alert.msg_type in ("Ack", "Error"):
        return CapRefusal("bad_args", f"CAP msgType {alert.msg_type} carries nothing to play")
    if alert.msg_type == "Cancel":
        if not alert.references:
            return CapRefusal("bad_args", "CAP Cancel without references: nothing to stop")
        return CapCancel(stops=tuple(AlertStop(a) for a in alert.references),
                         status=alert.status)
    if alert.msg_type == "Update" and not alert.references:
        return CapRefusal("bad_args", "CAP Update without references")

    if not alert.infos:
        return CapRefusal("bad_args", "CAP alert has no info block: nothing to say")
    warnings: list[str] = []
    chosen = next((i for i in alert.infos if _lang_matches(_info_language(i), language)), None)
    if chosen is None:
        chosen = alert.infos[0]
        warnings.append(
            f"no info in language {language!r}; using {_info_language(chosen)[:20]!r}"
        )
    until: datetime | None = None
    expires = chosen.first("expires")
    if expires:
        try:
            until = parse_rfc3339(expires)
        except ValueError:
            return CapRefusal("bad_args", f"info.expires: {expires[:40]!r} is not a date-time")
        if until <= now:
            return CapRefusal("expired", f"CAP alert expired at {expires[:40]}")
    media, inline = _resources(chosen, warnings)
    text = _text(chosen)
    if not media and text is None:
        return CapRefusal("bad_args", "CAP info has no headline, description, instruction "
                                      "or playable audio")
    lang = _info_language(chosen).split("-")[0].lower() or language
    start = AlertStart(
        alert_id=alert_id_for(alert.sender, alert.identifier),
        media=media,
        text=text,
        lang=lang,
        until=until,
    )
    return CapAlert(alert=start, replaces=alert.references if alert.msg_type == "Update" else (),
                    inline=inline, warnings=tuple(warnings), status=alert.status,
                    msg_type=alert.msg_type)
