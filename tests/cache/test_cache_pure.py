"""The pure parts: horizon arithmetic, the token bucket, digest names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.cache import horizon
from agent.cache.digest import check_sha256
from agent.cache.ratelimit import Bucket, kbps_to_bytes_per_s
from agent.model import MediaRef

T0 = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)


def ref(c: str) -> MediaRef:
    return MediaRef(f"http://x/{c}", c * 64, 1, "audio/mpeg")


def test_horizon_pins_playing_and_upcoming_in_need_order() -> None:
    needs = [
        (T0 + timedelta(hours=49), ref("a")),  # beyond 48 h
        (T0 + timedelta(hours=3), ref("b")),
        (T0 - timedelta(hours=1), ref("c")),  # may still be playing
        (T0 - timedelta(hours=7), ref("d")),  # long over
        (T0 + timedelta(hours=1), ref("b")),
    ]
    got = horizon.horizon_refs(needs, T0, timedelta(hours=48))
    assert [r.sha256[0] for r in got] == ["c", "b"]


def test_missing_counts_distinct_media_in_window() -> None:
    needs = [
        (T0 + timedelta(hours=h), ref(c)) for h, c in [(1, "a"), (2, "a"), (3, "b"), (25, "e")]
    ]
    assert horizon.count_missing(needs, T0, timedelta(hours=24), lambda s: s[0] == "b") == 1
    assert horizon.next_warning_at(needs, T0, timedelta(minutes=30)) == T0 + timedelta(minutes=30)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        horizon.horizon_refs([(datetime(2026, 1, 1), ref("a"))], T0, timedelta(hours=1))


def test_bucket_holds_the_rate_over_any_chunking() -> None:
    b = Bucket(rate=1000.0, burst=100.0)
    t = 0.0
    for n in [64, 500, 3, 1200, 233]:
        t += b.reserve(n, t)
    assert t == pytest.approx(2000 / 1000, rel=1e-9)  # 2000 bytes at 1000/s, no start burst
    assert kbps_to_bytes_per_s(800) == 100_000


def test_only_lowercase_hex_digests_name_files() -> None:
    check_sha256("0" * 64)
    for bad in ["A" * 64, "0" * 63, "../" + "0" * 61, "0" * 64 + "\n", 5]:
        with pytest.raises(ValueError, match="not a SHA-256"):
            check_sha256(bad)
