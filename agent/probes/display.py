"""Whether the configured display's device is there: a framebuffer, an SPI bus, a folder.

Reads `/dev/fbN` (and `/sys/class/graphics/fbN` for a kernel framebuffer), `/dev/spidevB.C`
for MAX7219 LED matrices, or the image-dir folder. Read because an HDMI screen that
was unplugged or an SPI overlay missing after an update leaves a board dark while
the agent thinks it is showing slides.
"""

from __future__ import annotations

import os
from pathlib import Path


def display_present(
    kind: str, path: str, *, dev_root: Path = Path("/dev"), sys_root: Path = Path("/sys")
) -> bool | None:
    """True/False for a configured display; None for `kind = "none"` or an unknown kind."""
    if kind == "framebuffer":
        target = Path(path)
        if not target.exists():
            return False
        name = target.name
        if target.is_char_device() and name.startswith("fb"):
            return (sys_root / "class/graphics" / name).exists()
        return os.access(target, os.W_OK)  # a file-backed framebuffer (tests, emulators)
    if kind == "max7219":
        try:
            return any(p.name.startswith("spidev") for p in dev_root.iterdir())
        except OSError:
            return None
    if kind == "image-dir":
        folder = Path(path)
        return folder.is_dir() and os.access(folder, os.W_OK)
    return None
