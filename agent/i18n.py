"""Translations of what the command lines print to people (technicians, operators).

`_("text")` returns the text in the language of the user's locale (LANGUAGE,
LC_ALL, LC_MESSAGES, LANG, as gettext reads them) when a catalog exists under
`agent/locale/`, else the English original. Wire formats (acks, events, JSON
output) are never translated: only what a person reads in a terminal.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

DOMAIN = "tcs_agent"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@cache
def _translation() -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), fallback=True)


def _(message: str) -> str:
    return _translation().gettext(message)
