"""Handing freed frame memory back to the OS (glibc), so a board's RSS stays flat.

Pages and frames are freed by reference counting as soon as a scene is replaced, but
glibc keeps freed chunks under its mmap threshold in the arena of the thread that
freed them: bands, glyph bitmaps and PNG buffers are 0.1-1 MB, and scenes are rendered
in worker threads, each with its own arena. `trim()` (malloc_trim(0)) returns the free
pages of every arena; the presenter calls it after each scene change, when the old
scene's pages have just been freed (about a millisecond, every few seconds at most).
Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Callable

_fn: Callable[[int], int] | None = None
_looked = False


def trim() -> None:
    global _fn, _looked
    if not _looked:
        _looked = True
        name = ctypes.util.find_library("c")
        with contextlib.suppress(OSError, AttributeError):
            _fn = ctypes.CDLL(name).malloc_trim if name else None
    if _fn is not None:
        _fn(0)
