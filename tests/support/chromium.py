"""Headless Chromium (Debian's `chromium`) for opening a local HTML file: screenshot
plus what the page logged to the console (errors included)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars")


@dataclass(frozen=True)
class Opened:
    screenshot: Path
    console: list[str]  # CONSOLE lines Chromium logged for the page

    def errors(self) -> list[str]:
        return [line for line in self.console if "ERROR" in line or "Uncaught" in line]


def binary() -> str | None:
    return shutil.which("chromium")


def open_page(html: Path, screenshot: Path, *, width: int = 1280, height: int = 1600,
              timeout: float = 120) -> Opened:
    exe = binary()
    if exe is None:
        raise RuntimeError("chromium not found: install Debian's chromium (scripts/setup.sh)")
    with tempfile.TemporaryDirectory(prefix="tcs-chromium-") as profile:
        out = subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             f"--screenshot={screenshot}", html.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0 or not screenshot.exists():
        raise AssertionError(f"chromium failed ({out.returncode}): {out.stderr[-2000:]}")
    return Opened(screenshot, [ln for ln in out.stderr.splitlines() if "CONSOLE" in ln])
