"""SHA-256 names and file hashing: the only way a name becomes a path in the cache.

A cache key must be exactly 64 lowercase hex digits. Anything else (upper case,
"../", a URL's file name) is refused here, so nothing the network says can ever
choose a path on the SD card.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")
READ_CHUNK = 1 << 20


def check_sha256(value: object) -> str:
    """Return `value` if it is a lowercase hex SHA-256 digest, else raise ValueError."""
    if not isinstance(value, str) or not SHA256_RE.match(value):
        raise ValueError(f"not a SHA-256 digest (64 lowercase hex digits): {value!r}")
    return value


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and SHA256_RE.match(value) is not None


def hash_file(
    path: Path,
    *,
    limit: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[str, int]:
    """Hash `path` (its first `limit` bytes if given); return (hex digest, bytes read).

    `on_bytes` is called after each chunk (progress bars, rate limits).
    """
    h = hashlib.sha256()
    done = 0
    with path.open("rb", buffering=0) as f:
        while limit is None or done < limit:
            want = READ_CHUNK if limit is None else min(READ_CHUNK, limit - done)
            block = f.read(want)
            if not block:
                break
            h.update(block)
            done += len(block)
            if on_bytes is not None:
                on_bytes(len(block))
    return h.hexdigest(), done
