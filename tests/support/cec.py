"""A fake `cec-client` on PATH (there is no HDMI here): records the commands it was
asked for in `cec.log` and fails loudly (exit 97, an UNEXPECTED line) on anything else.
`touch <tmp>/tv-unplugged` makes every command fail as an unanswering TV does."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

FAKE_CEC = r"""#!/bin/sh
# Fake cec-client: single-command mode with debug level 1 only, and only the commands
# the agent may send; anything else fails loudly (exit 97) and is logged as UNEXPECTED.
log="$FAKE_CEC_LOG"
if [ "$*" != "-s -d 1" ]; then echo "UNEXPECTED args: $*" >> "$log"; exit 97; fi
read -r cmd
case "$cmd" in
  "on 0"|"standby 0"|"as") echo "$cmd" >> "$log"; [ -e "$FAKE_CEC_DEAD" ] && exit 1; exit 0 ;;
  *) echo "UNEXPECTED command: $cmd" >> "$log"; exit 97 ;;
esac
"""


def install_fake_cec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the fake first on PATH; returns its log (one line per command received)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "cec-client"
    fake.write_text(FAKE_CEC)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "cec.log"
    log.write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CEC_LOG", str(log))
    monkeypatch.setenv("FAKE_CEC_DEAD", str(tmp_path / "tv-unplugged"))
    return log
