"""Translations of the console's reports (gettext domain `tcs_central`).

A catalog of its own, apart from the agent's `tcs_agent` (agent/i18n.py), so the
console's report wording and the agent's terminal wording are maintained and
merged independently. The language comes from LANGUAGE, LC_ALL, LC_MESSAGES or
LANG, as gettext reads them; without a catalog for it, English.
"""

from __future__ import annotations

import gettext
from pathlib import Path

from agent.i18n import catalog

DOMAIN = "tcs_central"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def translation() -> gettext.NullTranslations:
    return catalog(DOMAIN, LOCALE_DIR)


def _(message: str) -> str:
    return translation().gettext(message)
