"""What the schedule needs and when: pure arithmetic over (when, MediaRef) pairs.

The scheduler hands over upcoming occurrences as plain `(datetime, MediaRef)`
pairs; everything here is a function of those pairs and a `now` passed in, so it
is tested without a clock or a disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from agent.model import MediaRef

Need = tuple[datetime, MediaRef]

# An occurrence that began this long ago may still be playing (or about to
# resume after an alert): its media stays pinned.
PLAYING_GRACE = timedelta(hours=6)


def aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime in media needs: {when!r}")
    return when


def within(needs: Iterable[Need], start: datetime, end: datetime) -> list[Need]:
    """Needs with start <= when <= end, earliest first (stable)."""
    out = [(w, r) for w, r in needs if start <= aware(w) <= end]
    out.sort(key=lambda n: n[0])
    return out


def by_first_need(needs: Iterable[Need]) -> list[MediaRef]:
    """Distinct refs (by sha256) in order of their earliest need."""
    seen: set[str] = set()
    out: list[MediaRef] = []
    for _, ref in sorted(needs, key=lambda n: aware(n[0])):
        if ref.sha256 not in seen:
            seen.add(ref.sha256)
            out.append(ref)
    return out


def horizon_refs(needs: Iterable[Need], now: datetime, horizon: timedelta) -> list[MediaRef]:
    """What to pin and prefetch: everything needed from a little before now to now+horizon."""
    return by_first_need(within(needs, now - PLAYING_GRACE, now + horizon))


def count_missing(
    needs: Iterable[Need], now: datetime, window: timedelta, has: Callable[[str], bool]
) -> int:
    """Distinct media needed in [now, now+window] that `has` says is not stored."""
    return sum(1 for r in by_first_need(within(needs, now, now + window)) if not has(r.sha256))


def due_soon_missing(
    needs: Iterable[Need], now: datetime, warn: timedelta, has: Callable[[str], bool]
) -> list[Need]:
    """Needs starting within `warn` from now whose media is still not stored."""
    return [(w, r) for w, r in within(needs, now, now + warn) if not has(r.sha256)]


def next_warning_at(needs: Iterable[Need], now: datetime, warn: timedelta) -> datetime | None:
    """The next moment a need enters the warning window (to wake up for it)."""
    later = [w - warn for w, _ in needs if aware(w) - warn > now]
    return min(later) if later else None
