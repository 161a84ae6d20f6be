"""Translations of what the command lines print to people (technicians, operators).

`_("text")` returns the text in the language of the user's locale (LANGUAGE,
LC_ALL, LC_MESSAGES, LANG, as gettext reads them) when a catalog exists under
`agent/locale/`, else the English original. Wire formats (acks, events, JSON
output) are never translated: only what a person reads in a terminal.

A message that must be both (English in JSON or an ack's detail, translated in a
terminal) is built with `M("template {x}", x=...)`: a `Msg` whose `en()` is the
English text and whose `local()` is the translation. scripts/i18n.sh extracts the
templates of `_()` and `M()` alike.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DOMAIN = "tcs_agent"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@cache
def catalog(domain: str, locale_dir: Path) -> gettext.NullTranslations:
    """The catalog of `domain` for the user's locale (English when there is none);
    the console has a domain of its own (agent/central/i18n.py)."""
    return gettext.translation(domain, localedir=str(locale_dir), fallback=True)


def _(message: str) -> str:
    return catalog(DOMAIN, LOCALE_DIR).gettext(message)


@dataclass(frozen=True)
class Msg:
    """An English template and its values: translated for people, as is for machines."""

    template: str
    args: dict[str, Any] = field(default_factory=dict)

    def en(self) -> str:
        return self.template.format(**self.args)

    def local(self) -> str:
        # A value may itself be a message ("(not set)"): translated with the sentence.
        args = {k: v.local() if isinstance(v, Msg) else v for k, v in self.args.items()}
        return _(self.template).format(**args)

    def __str__(self) -> str:
        return self.en()


def M(template: str, **args: Any) -> Msg:
    """A message marked for translation (scripts/i18n.sh extracts `M` like `_`)."""
    return Msg(template, args)
