"""Safe advice about the `[device] timezone` a technician typed. Pure.

A wrong zone shifts every schedule and the quiet hours, so a suggestion must never
move the clock: plain spelling similarity offered `Asia/Yangon` (UTC+06:30) for
`Asia/Hanoi` and `GMT+0` for `GMT+7`. Here a suggestion is either the zone for a
spelling people in Vietnam actually use (Hanoi, ICT, GMT+7, UTC+7, …), or a zone with
the offset the text itself states, or a near-identical spelling (a typo), and it is
always shown with its UTC offset so the technician sees what it means. POSIX-style
`Etc/GMT+7` is valid but means UTC−07:00 (the sign is inverted): it is flagged
(every Etc/GMT±N zone is, except the one with Vietnam's own offset).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, available_timezones

VIETNAM: Final = "Asia/Ho_Chi_Minh"
# Spellings of Vietnam's time seen in the field, folded by `_fold` (lowercase, no
# diacritics, no spaces, '_' or '-').
_VIETNAM_SPELLINGS: Final = frozenset(
    {
        "hanoi", "asia/hanoi", "asia/hanoicity", "hanoicity", "hcm", "hochiminh",
        "hochiminhcity", "asia/hochiminhcity", "saigon", "vietnam", "asia/vietnam",
        "vn", "ict", "indochinatime", "icst",
    }
)
_OFFSET: Final = re.compile(r"^(?:utc|gmt|ict)?([+-])(\d{1,2})(?::?([0-5]\d))?$")
_ETC_GMT: Final = re.compile(r"^(?:Etc/)?GMT([+-])(\d{1,2})$")
# A typo of a real zone name is this close to it; Hanoi/Yangon (0.76) is not.
_TYPO_RATIO: Final = 0.85


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFD", text.strip().lower()).replace("đ", "d")
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[\s_.-]+", "", text)


def offset_text(offset: timedelta) -> str:
    """`UTC+07:00` for a UTC offset."""
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def zone_offset(name: str, at: datetime | None = None) -> timedelta:
    now = at or datetime.now(ZoneInfo("UTC"))
    offset = now.astimezone(ZoneInfo(name)).utcoffset()
    return offset if offset is not None else timedelta(0)


def describe(name: str) -> str:
    """`'Asia/Ho_Chi_Minh' (UTC+07:00)`."""
    return f"{name!r} ({offset_text(zone_offset(name))})"


def _stated_offset(folded: str) -> timedelta | None:
    m = _OFFSET.match(folded)
    if m is None:
        return None
    sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    if hours > 14:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return delta if sign == "+" else -delta


def suggestions(name: str, zones: frozenset[str] | set[str] | None = None) -> list[str]:
    """Zones to suggest for an unknown `name`, best first; [] when none is safe."""
    known = zones if zones is not None else available_timezones()
    folded = _fold(name)
    if folded in _VIETNAM_SPELLINGS:
        return [VIETNAM]
    stated = _stated_offset(folded)
    if stated is not None:
        if stated == timedelta(hours=7):
            return [VIETNAM]
        # Only city zones that have that offset now: never a different clock.
        same = sorted(
            z for z in known if "/" in z and not z.startswith("Etc/") and zone_offset(z) == stated
        )
        return same[:3]
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=_TYPO_RATIO)
    return close[:1]


def unknown_zone_problem(name: str) -> str:
    """The message for a zone name the tz database does not know."""
    hint = suggestions(name)
    if not hint:
        return f"unknown time zone {name!r} (use an Area/City name such as {describe(VIETNAM)})"
    shown = " or ".join(describe(z) for z in hint)
    return f"unknown time zone {name!r} (did you mean {shown}?)"


def inverted_sign_problem(name: str) -> str | None:
    """For POSIX-style `Etc/GMT+7` (which is UTC−07:00): the message; else None."""
    m = _ETC_GMT.match(name)
    if m is None or int(m.group(2)) == 0:
        return None
    real = offset_text(zone_offset(name))
    if real == offset_text(zone_offset(VIETNAM)):
        return None  # Etc/GMT-7 is what it looks like to someone who knows POSIX: Vietnam's
    return (
        f"{name!r} means {real}: POSIX inverts the sign of Etc/GMT zones; "
        f"use an Area/City name; Vietnam is {describe(VIETNAM)}"
    )
