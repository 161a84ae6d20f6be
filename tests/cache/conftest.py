"""Fixtures for the cache tests: a real HTTP media server and a cache on tmp disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.http_media import MediaServer
from support.media_cache import Events

from agent.cache.store import MediaCache


@pytest.fixture
def server() -> Iterator[MediaServer]:
    with MediaServer() as s:
        yield s


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def cache(tmp_path: Path, events: Events) -> MediaCache:
    c = MediaCache(tmp_path / "cache", 64 << 20, emit_event=events, reserve_bytes=0)
    c.recover()
    return c
