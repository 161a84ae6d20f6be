"""Every word of the HTML report has a Vietnamese translation in the compiled catalog."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import agent.central.report_html as report_html
from agent.central.figures import OUTCOMES
from agent.central.i18n import DOMAIN, LOCALE_DIR

CENTRAL = Path(report_html.__file__).resolve().parent


def test_every_report_string_is_translated_to_vietnamese() -> None:
    catalog = gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=["vi"])
    sources = [CENTRAL / "report_html.py", CENTRAL / "templates" / "report.html.j2"]
    words = {m for src in sources
             for m in re.findall(r'_\("([^"]+)"\)', src.read_text(encoding="utf-8"))}
    words |= set(OUTCOMES)
    assert len(words) > 40
    untranslated = sorted(w for w in words if catalog.gettext(w) == w)
    assert untranslated == []
