"""CAP 1.2 → alert mapping (PROTOCOL §5.4) over the public examples and hand-made variants."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.capdoc import cap, info, resource

from agent.cap import CapAlert, CapCancel, CapError, CapRefusal, check_cap, parse_cap
from agent.model import AlertStop, MediaRef

DATA = Path("/work/shared/data/cap")
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
OLD_NOW = datetime(2003, 6, 17, 20, 0, tzinfo=UTC)


def run(xml: str, *, language: str = "vi", test: bool = False, exercise: bool = False,
        now: datetime = NOW) -> CapAlert | CapCancel | CapRefusal:
    return parse_cap(xml, language=language, play_test=test, play_exercise=exercise, now=now)


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# --- the public examples ----------------------------------------------------------


def test_every_example_file_is_covered() -> None:
    names = {p.name for p in DATA.glob("*.xml")}
    assert names == {
        "01_oasis_spec_A1_hsas_alert_resource_image.xml",
        "02_oasis_spec_A3_earthquake_update.xml",
        "05_ipaws_cancel_signed.xml",
        "09_amber_alert_two_languages.xml",
        "10_MALICIOUS_xxe_xinclude_test.xml",
    }


def test_oasis_a1_alert_text_and_non_audio_resource() -> None:
    out = run(read("01_oasis_spec_A1_hsas_alert_resource_image.xml"), language="en")
    assert isinstance(out, CapAlert)
    a = out.alert
    assert a.alert_id == "cap:hsas@dhs.gov:43b080713727"
    assert a.text is not None
    headline, description, instruction = a.text.split("\n")
    assert headline == "Homeland Security Sets Code ORANGE"
    assert description.startswith("The Department of Homeland Security has elevated the "
                                  "Homeland Security Advisory System threat level")
    assert instruction.startswith("A High Condition is declared")
    assert a.media == () and a.until is None and a.priority == 100 and a.lang == "en"
    assert out.replaces == ()
    # The GIF is not audio; the operator learns why nothing of it plays.
    assert out.warnings == ("resource[0]: image/gif is not audio, ignored",)


def test_oasis_a3_update_replaces_the_referenced_alert() -> None:
    out = run(read("02_oasis_spec_A3_earthquake_update.xml"), language="en")
    assert isinstance(out, CapAlert) and out.msg_type == "Update"
    assert out.alert.alert_id == "cap:trinet@caltech.edu:TRI13970876.2"
    assert out.replaces == ("cap:trinet@caltech.edu:TRI13970876.1",)
    assert out.alert.text is not None and out.alert.text.startswith("EQ 3.4 Imperial County CA\n")


def test_ipaws_cancel_stops_the_referenced_alert() -> None:
    out = run(read("05_ipaws_cancel_signed.xml"))
    assert out == CapCancel(stops=(AlertStop(
        "cap:bbrundage@dps.state.nv.us:AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd"),))


def test_two_languages_pick_the_device_language() -> None:
    xml = read("09_amber_alert_two_languages.xml")
    es = run(xml, language="es")
    assert isinstance(es, CapAlert) and es.alert.lang == "es" and es.warnings == ()
    assert es.alert.text is not None
    assert es.alert.text.startswith("Alerta Amber en el condado de Los Ángeles")
    en = run(xml, language="en")
    assert isinstance(en, CapAlert) and en.alert.text is not None
    assert en.alert.text.startswith("Amber Alert in Los Angeles County")
    # No Vietnamese info: the first one is used, with a warning saying so.
    vi = run(xml, language="vi")
    assert isinstance(vi, CapAlert) and vi.alert.lang == "en"
    assert vi.warnings == ("no info in language 'vi'; using 'en-US'",)


def test_malicious_xxe_xinclude_is_rejected_bad_args() -> None:
    out = run(read("10_MALICIOUS_xxe_xinclude_test.xml"), now=OLD_NOW)
    assert isinstance(out, CapRefusal) and out.code == "bad_args"
    assert "DTD" in out.detail
    with pytest.raises(CapError):
        check_cap(read("10_MALICIOUS_xxe_xinclude_test.xml"))


@pytest.mark.parametrize("path", sorted(DATA.glob("*.xml")), ids=lambda p: p.name)
def test_check_cap_agrees_with_parse_cap(path: Path) -> None:
    xml = path.read_text(encoding="utf-8")
    safe = not path.name.startswith("10_")
    if safe:
        check_cap(xml)
    else:
        with pytest.raises(CapError):
            check_cap(xml)


# --- hostile XML ----------------------------------------------------------------


@pytest.fixture
def http_spy() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on a free port that records every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY leak "LEAKED">')

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_external_dtd_and_entities_never_touch_the_network(
        http_spy: tuple[str, list[str]]) -> None:
    base, hits = http_spy
    prologs = [
        f'<!DOCTYPE alert SYSTEM "{base}/a.dtd">',
        f'<!DOCTYPE alert [<!ENTITY % p SYSTEM "{base}/p.dtd"> %p;]>',
        f'<!DOCTYPE alert [<!ENTITY x SYSTEM "{base}/x">]>',
    ]
    for prolog in prologs:
        xml = cap(prolog=prolog, infos=info(headline="H &x;"))
        out = run(xml)
        assert isinstance(out, CapRefusal) and out.code == "bad_args", prolog
        assert "LEAKED" not in out.detail
    assert hits == []


def test_billion_laughs_is_refused_fast() -> None:
    lol = '<!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>"
    out = run(cap(prolog=lol, infos=info(headline="&j;")))
    assert isinstance(out, CapRefusal) and out.code == "bad_args"


def test_xinclude_without_doctype_is_refused() -> None:
    inc = ('<x xmlns:xi="http://www.w3.org/2001/XInclude">'
           '<xi:include href="file:///etc/passwd" parse="text"/></x>')
    out = run(cap(infos=inc + info()))
    assert out == CapRefusal("bad_args", "XInclude is not allowed")


def test_undeclared_entity_is_refused() -> None:
    out = run(cap(infos=info(headline="Bão &xxe;")))
    assert isinstance(out, CapRefusal) and out.code == "bad_args"
    assert "not well-formed" in out.detail


@pytest.mark.parametrize(
    ("xml", "needle"),
    [
        (cap(ns="urn:oasis:names:tc:emergency:cap:1.1"), "not a CAP 1.2 alert"),
        ("<html/>", "not a CAP 1.2 alert"),
        ("", "not well-formed"),
        ("\ud800", "not well-formed"),
        (cap().replace("<identifier>VN-48-2026-0042</identifier>", ""), "alert.identifier"),
        (cap().replace("2026-11-23T09:00:00+07:00", "yesterday"), "alert.sent"),
        (cap(status="Real"), "alert.status"),
        (cap(msg_type="Ack"), "msgType Ack"),
        (cap(msg_type="Cancel"), "Cancel without references"),
        (cap(msg_type="Update"), "Update without references"),
        (cap(refs="only-two,fields"), "alert.references"),
        (cap(infos=""), "no info block"),
        (cap(infos=info(headline="", description="", instruction="")), "no headline"),
        (cap(infos=info(expires="soon")), "info.expires"),
    ],
)
def test_not_cap_is_bad_args(xml: str, needle: str) -> None:
    out = run(xml)
    assert isinstance(out, CapRefusal) and out.code == "bad_args", out
    assert needle in out.detail


# --- status, expiry, language -----------------------------------------------------


def test_actual_alert_maps_to_alert_start() -> None:
    out = run(cap(infos=info(expires="2026-11-23T18:00:00+07:00")))
    assert isinstance(out, CapAlert)
    a = out.alert
    assert a.alert_id == "cap:kttv@danang.gov.vn:VN-48-2026-0042"
    assert a.text == "Bão số 9\nGió mạnh cấp 12\nKhông ra khơi"
    assert a.lang == "vi" and a.priority == 100 and a.repeat == 3 and a.chime
    assert a.until == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert out.warnings == () and out.inline == {}


def test_expired_cap_is_rejected_expired() -> None:
    out = run(cap(infos=info(expires="2026-11-23T09:59:00+07:00")))
    assert isinstance(out, CapRefusal) and out.code == "expired"
    assert "2026-11-23T09:59:00+07:00" in out.detail


@pytest.mark.parametrize(
    ("status", "test", "exercise", "plays"),
    [
        ("Test", False, False, False),
        ("Test", True, False, True),
        ("Exercise", False, False, False),
        ("Exercise", False, True, True),
        ("Exercise", True, False, False),
        ("Draft", True, True, False),
        ("System", True, True, False),
    ],
)
def test_status_gating(status: str, test: bool, exercise: bool, plays: bool) -> None:
    out = run(cap(status=status), test=test, exercise=exercise)
    if plays:
        assert isinstance(out, CapAlert) and out.status == status
    else:
        assert isinstance(out, CapRefusal) and out.code == "bad_args"
        assert f"status {status}" in out.detail


def test_language_prefix_match_and_default() -> None:
    xml = cap(infos=info(lang="en-US", headline="Typhoon") + info(lang="vi-VN"))
    out = run(xml, language="vi")
    assert isinstance(out, CapAlert) and out.alert.text is not None
    assert out.alert.text.startswith("Bão số 9")
    # An info without <language> is en-US by CAP's default.
    xml = cap(infos=info(lang=None, headline="Storm") + info(lang="vi"))
    out = run(xml, language="en")
    assert isinstance(out, CapAlert) and out.alert.text is not None
    assert out.alert.text.startswith("Storm")


def test_update_and_cancel_with_several_references() -> None:
    refs = ("kttv@danang.gov.vn,A1,2026-11-23T08:00:00+07:00 "
            "kttv@danang.gov.vn,A2,2026-11-23T08:30:00+07:00")
    up = run(cap(msg_type="Update", refs=refs))
    assert isinstance(up, CapAlert)
    assert up.replaces == ("cap:kttv@danang.gov.vn:A1", "cap:kttv@danang.gov.vn:A2")
    cancel = run(cap(msg_type="Cancel", refs=refs, infos=""))
    assert cancel == CapCancel(stops=(AlertStop("cap:kttv@danang.gov.vn:A1"),
                                      AlertStop("cap:kttv@danang.gov.vn:A2")))


# --- audio resources --------------------------------------------------------------


AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200))


def test_deref_audio_becomes_media_with_sha256_and_inline_bytes() -> None:
    sha1 = hashlib.sha1(AUDIO).hexdigest()
    res = resource(AUDIO, digest=sha1, size=str(len(AUDIO)), uri="https://kttv.vn/a.wav")
    out = run(cap(infos=info(resources=res)))
    assert isinstance(out, CapAlert)
    sha = hashlib.sha256(AUDIO).hexdigest()
    assert out.alert.media == (MediaRef("https://kttv.vn/a.wav", sha, len(AUDIO), "audio/x-wav"),)
    assert out.inline == {sha: AUDIO}
    assert out.warnings == ()


def test_disagreeing_digest_and_size_are_warnings_not_fatal() -> None:
    res = resource(AUDIO, digest="0" * 40, size="999999")
    out = run(cap(infos=info(resources=res)))
    assert isinstance(out, CapAlert)
    assert len(out.alert.media) == 1
    assert out.alert.media[0].url.startswith("cap-deref:")
    assert out.warnings == (
        "resource[0]: CAP digest does not match the derefUri content",
        f"resource[0]: CAP size 999999 but derefUri holds {len(AUDIO)} bytes",
    )


def test_audio_by_uri_only_is_not_a_media_ref() -> None:
    res = resource(None, uri="https://kttv.vn/a.mp3", mime="audio/mpeg")
    out = run(cap(infos=info(resources=res)))
    assert isinstance(out, CapAlert) and out.alert.media == ()
    assert out.alert.text is not None  # still spoken via TTS
    assert "no sha256" in out.warnings[0]
    # With no text either, there is nothing to play.
    bare = run(cap(infos=info(headline="", description="", instruction="", resources=res)))
    assert isinstance(bare, CapRefusal) and bare.code == "bad_args"


def test_bad_base64_deref_is_warned() -> None:
    res = resource(None).replace("</resource>", "<derefUri>!!not base64!!</derefUri>"
                                                      "</resource>")
    out = run(cap(infos=info(resources=res)))
    assert isinstance(out, CapAlert) and out.alert.media == ()
    assert out.warnings == ("resource[0]: derefUri is not base64, ignored",)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_cap(cap(), language="vi", play_test=False, play_exercise=False,
                  now=datetime(2026, 1, 1))


def test_audio_only_cap_plays_its_deref_audio_without_text() -> None:
    res = resource(AUDIO)
    out = run(cap(infos=info(headline="", description="", instruction="", resources=res)))
    assert isinstance(out, CapAlert) and out.alert.text is None
    sha = hashlib.sha256(AUDIO).hexdigest()
    assert [m.sha256 for m in out.alert.media] == [sha] and out.inline == {sha: AUDIO}
