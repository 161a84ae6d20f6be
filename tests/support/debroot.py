"""A Debian 12 root made by debootstrap, cached between test runs, for installer tests.

debootstrap takes minutes and downloads ~200 MB, so the root is built once per
package list under /var/cache/tcs-agent-tests (a stable folder CI can keep) and
each test works on a fresh copy of it. The installer's own runtime packages are
included up front, so the installer's apt step finds them installed (as on a Pi
that has been set up once) and the test needs no network beyond the first build.

    root = fresh_root(tmp_path / "root", packages)   # a copy; the cache stays clean
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

CACHE = Path(os.environ.get("TCS_TEST_CACHE", "/var/cache/tcs-agent-tests"))
SUITE = "bookworm"
MIRROR = os.environ.get("TCS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Every build step's output goes here, so a failed build can be read afterwards.
LOG_NAME = "debootstrap.log"


class RootUnavailable(Exception):
    """debootstrap is missing or failed; the message says why (the caller skips or fails)."""


def cached_root(packages: Sequence[str]) -> Path:
    """The cached Debian 12 root with `packages` installed; built (once, locked) if missing."""
    if shutil.which("debootstrap") is None:
        raise RootUnavailable("debootstrap is not installed (scripts/setup.sh installs it)")
    wanted = sorted(set(packages))
    tag = hashlib.sha256(" ".join([SUITE, *wanted]).encode()).hexdigest()[:12]
    root = CACHE / f"{SUITE}-{tag}"
    done = root / ".tcs-complete"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{SUITE}-{tag}.lock").open("w") as lock:
        # Two test processes (or a developer and CI) must not build the same root.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return root
        if root.exists():
            shutil.rmtree(root)  # a build that died half-way
        log = CACHE / f"{SUITE}-{tag}.{LOG_NAME}"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(wanted)}",
            SUITE,
            str(root),
            MIRROR,
        ]
        with log.open("w") as out:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
        if rc != 0:
            raise RootUnavailable(f"debootstrap failed ({rc}); see {log}")
        # The chroot resolves names (not needed by the tests, but apt in it can then work).
        shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf")
        done.write_text(" ".join(wanted) + "\n")
        return root


def fresh_root(dest: Path, packages: Sequence[str]) -> Path:
    """A private copy of the cached root at `dest` (hard-linked where possible: seconds)."""
    src = cached_root(packages)
    # cp -al would share inodes, and the installer rewrites files in place (e.g.
    # /etc/passwd via useradd writes a new file, but dpkg may not): copy for real,
    # with reflinks where the filesystem has them.
    subprocess.run(
        ["cp", "-a", "--reflink=auto", str(src), str(dest)], check=True, capture_output=True
    )
    return dest
