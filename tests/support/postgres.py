"""A private PostgreSQL cluster for a test or a benchmark: initdb + pg_ctl in a temp dir.

initdb refuses to run as root, so the cluster belongs to `nobody` (CI runs as root);
it listens on 127.0.0.1 on a free port, trusts local connections, and is removed
when the context exits.

    with postgres_cluster() as url:   # postgresql://nobody@127.0.0.1:PORT/postgres
        ...
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "nobody"


def available() -> bool:
    return (BIN / "initdb").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log(c: Cluster) -> str:
    log = c.top / "log"
    return log.read_text(errors="replace") if log.exists() else ""


def _as_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *args] if os.geteuid() == 0 else args


class Cluster:
    """A running private cluster; `stop()` / `start()` simulate a database outage."""

    def __init__(self, top: Path, user: str, port: int) -> None:
        self.top, self.data, self.user, self.port = top, top / "data", user, port
        self.url = f"postgresql://{user}@127.0.0.1:{port}/postgres"

    def init(self) -> None:
        subprocess.run(_as_user([str(BIN / "initdb"), "-D", str(self.data), "-A", "trust",
                                 "-U", self.user, "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        subprocess.run(_as_user([
            str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.top / "log"), "-w",
            "-t", "60", "-o",
            f"-p {self.port} -k {self.top} -c listen_addresses=127.0.0.1 -c fsync=on",
            "start"]), check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        subprocess.run(_as_user([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                 "-w", "stop"]), capture_output=True, timeout=60, check=False)


@contextmanager
def cluster() -> Iterator[Cluster]:
    if not available():
        raise RuntimeError(f"{BIN}/initdb not found: install Debian's postgresql "
                           "(scripts/setup.sh)")
    top = Path(tempfile.mkdtemp(prefix="tcs-pg-"))
    user = USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        pw = pwd.getpwnam(USER)
        os.chown(top, pw.pw_uid, pw.pw_gid)
    c = Cluster(top, user, _free_port())
    try:
        c.init()
        for attempt in range(3):
            try:
                c.start()
                break
            except subprocess.CalledProcessError:
                # A free port is free only until someone binds it (another copy of
                # the suite runs beside this one): the next free one, not a sleep.
                if attempt == 2 or "already in use" not in _log(c):
                    raise
                c = Cluster(top, user, _free_port())
        yield c
    finally:
        c.stop()
        shutil.rmtree(top, ignore_errors=True)


@contextmanager
def postgres_cluster() -> Iterator[str]:
    with cluster() as c:
        yield c.url
