"""Translations of the console's reports (gettext domain `tcs_central`).

A catalog of its own, apart from the agent's `tcs_agent` (agent/i18n.py), so the
console's report wording and the agent's terminal wording are maintained and
merged independently. The language comes from LANGUAGE, LC_ALL, LC_MESSAGES or
LANG, as gettext reads them; without a catalog for it, English.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

DOMAIN = "tcs_central"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@cache
def translation() -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), fallback=True)


def _(message: str) -> str:
    return translation().gettext(message)
