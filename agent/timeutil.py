"""Time formatting and parsing shared by every report (PROTOCOL §6: RFC 3339, offset, ms)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def rfc3339_ms(ts: float | datetime, tz: tzinfo | None = None) -> str:
    """Format a Unix time (or aware datetime) as RFC 3339 with milliseconds and offset.

    `tz` is the device's configured zone; reports carry local offsets because the
    commune operators reading them think in local time.
    """
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError("naive datetime")
        dt = ts.astimezone(tz or UTC)
    else:
        dt = datetime.fromtimestamp(ts, tz or UTC)
    return dt.isoformat(timespec="milliseconds")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; an offset (or Z) is required.

    Raises ValueError with a readable message for anything else.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise ValueError("not an RFC 3339 timestamp")
    if "T" not in text and "t" not in text:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp (no 'T')")
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return dt
