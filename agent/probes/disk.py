"""Free space for the agent's storage folder (statvfs; blocks available to non-root).

Read because a full SD card stops the media cache and, worse, the proof outbox; the
agent runs as its own user, so the root-reserved blocks are not its to use.
"""

from __future__ import annotations

import os
from pathlib import Path


def disk_free_mb(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return int(st.f_bavail * st.f_frsize // (1024 * 1024))
