"""Media handed to the cache as bytes (a CAP `derefUri`, PROTOCOL §5.4): stored like a
download (content-addressed, verified), bounded by the cache's max media size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support.media_cache import Events, files_under, payload

from agent.cache.store import MediaCache, MediaRejected


def test_cache_inline_bytes_are_stored_content_addressed(cache: MediaCache) -> None:
    body = payload(100_000)
    sha = hashlib.sha256(body).hexdigest()
    path = cache.store_bytes(sha, body)
    assert path == cache.object_path(sha) and path.read_bytes() == body
    assert cache.path_for(sha) == path  # re-hashed and found good, as a player asks
    assert cache.store_bytes(sha, body) == path  # the same CAP again: nothing new
    assert files_under(cache.partial_dir) == []  # no temp file left behind


def test_cache_inline_bytes_that_do_not_hash_are_refused(cache: MediaCache) -> None:
    body = payload(1000)
    with pytest.raises(MediaRejected, match="do not hash"):
        cache.store_bytes("0" * 64, body)
    assert not cache.has("0" * 64)


def test_cache_inline_bytes_above_the_max_media_size_are_refused(
    tmp_path: Path, events: Events
) -> None:
    cache = MediaCache(tmp_path / "c", 50_000, emit_event=events, reserve_bytes=0)
    cache.recover()
    assert cache.max_media_bytes == 50_000
    body = payload(50_001)
    sha = hashlib.sha256(body).hexdigest()
    with pytest.raises(MediaRejected, match="max media size"):
        cache.store_bytes(sha, body)
    assert not cache.has(sha) and files_under(cache.partial_dir) == []
