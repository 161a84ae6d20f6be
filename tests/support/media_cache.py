"""Helpers for cache tests: refs for bytes, deterministic payloads, an event recorder."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from agent.model import MediaRef

T = TypeVar("T")


class Events:
    """Collects emitted events; tests assert on what an operator would see."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def __call__(self, level: str, code: str, detail: str) -> None:
        assert level in ("info", "warning", "error"), level
        self.items.append((level, code, detail))

    def codes(self) -> list[str]:
        return [c for _, c, _ in self.items]

    def of(self, code: str) -> list[tuple[str, str, str]]:
        return [e for e in self.items if e[1] == code]


def make_ref(url: str, body: bytes, mime: str = "audio/mpeg") -> MediaRef:
    return MediaRef(url=url, sha256=hashlib.sha256(body).hexdigest(), size=len(body), type=mime)


def payload(n: int, seed: int = 0) -> bytes:
    """Deterministic bytes, different per seed, cheap to make."""
    block = hashlib.sha256(f"seed{seed}".encode()).digest() * 64
    reps = n // len(block) + 1
    return (block * reps)[:n]


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run a coroutine with a hard timeout (no pytest-asyncio here)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def files_under(root: Path) -> list[str]:
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)
