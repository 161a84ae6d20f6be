"""socat pty pairs for serial-device tests, and a threaded server for the far end.

with PtyPair(dev / "ttyUSB2") as pair:   # the driver opens pair.driver_end
    peer = MyDevice(pair.sim_end)          # a PtyPeer subclass answers on the other
    pair.vanish()                          # kill socat: the port disappears (EIO)
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path


class PtyPair:
    """`socat` joining two ptys, linked at `driver_end` and `driver_end`+".sim"."""

    def __init__(self, driver_end: Path) -> None:
        self.driver_end = driver_end
        self.sim_end = driver_end.with_name(driver_end.name + ".sim")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PtyPair:
        socat = shutil.which("socat")
        assert socat, "socat is required (scripts/setup.sh installs it)"
        self.proc = subprocess.Popen(
            [
                socat,
                f"pty,raw,echo=0,link={self.driver_end}",
                f"pty,raw,echo=0,link={self.sim_end}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not (self.driver_end.exists() and self.sim_end.exists()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"socat did not make the pty pair {self.driver_end}")
            time.sleep(0.01)
        return self

    def vanish(self) -> None:
        """The USB modem is unplugged: both ends close and the links go away."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        for link in (self.driver_end, self.sim_end):
            link.unlink(missing_ok=True)

    def __enter__(self) -> PtyPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.vanish()


class PtyPeer:
    """The far end of a pty pair, served by a thread: `on_chunk(bytes)` for what arrives."""

    def __init__(self, path: Path, name: str) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> PtyPeer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self._fd)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def send(self, data: bytes) -> None:
        try:
            os.write(self._fd, data)
        except OSError:
            self._stop.set()  # the pair is gone

    def on_chunk(self, chunk: bytes) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(self._fd, 256)
            except OSError:
                return
            if not chunk:
                return
            self.on_chunk(chunk)
