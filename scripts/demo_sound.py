"""The demo's sound scene: a private PulseAudio null sink the demo agent plays into,
a recorder of what reached it, and the figures of what was heard.

The recipe is the one in ../shared/TESTING-NOTES.md, without pytest, and its one
implementation (tests/support/pulse.py loads this module by path): `-n` and
`norewinds=1` are both needed or leading audio is lost; PortAudio reaches the sink
through ALSA's "pulse" device, so the agent's `[audio] output` is "pulse" and its
environment names this private daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RATE = 48000
SINK = "demo_null"
AUDIBLE_DBFS = -45.0


@dataclass(frozen=True)
class Heard:
    seconds: float  # audible time (10 ms windows above AUDIBLE_DBFS)
    peak_dbfs: float | None  # None: nothing at all


def private_env(runtime_dir: Path) -> dict[str, str]:
    """The variables that point clients at a private daemon in `runtime_dir` (writes its
    client.conf there)."""
    client_conf = runtime_dir / "client.conf"
    # Never let a client autospawn a default-configured daemon behind our back.
    client_conf.write_text("autospawn = no\n")
    return {"XDG_RUNTIME_DIR": str(runtime_dir), "PULSE_CLIENTCONFIG": str(client_conf)}


def with_private(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment with `overrides` from `private_env` and no PULSE_SERVER
    (which would send clients to another daemon)."""
    env = dict(os.environ, **overrides)
    env.pop("PULSE_SERVER", None)
    return env


def start_null_sink(env: dict[str, str], *, sink: str = SINK, channels: int = 1) -> None:
    """Start a daemon (`-n`: no default.pa) with one null sink at RATE, and wait until it
    answers `pactl info`."""
    cmd = [
        "pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n",
        "--load=module-native-protocol-unix",
        f"--load=module-null-sink sink_name={sink} rate={RATE} "
        f"channels={channels} norewinds=1",
    ]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, timeout=20, capture_output=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = subprocess.run(
            ["pactl", "info"], env=env, capture_output=True, timeout=5, check=False
        )
        if info.returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError("private pulseaudio did not come up")


def daemon_pid(runtime_dir: Path) -> int | None:
    """The private daemon's pid, read from the pid file it writes in its runtime dir."""
    try:
        return int((runtime_dir / "pulse" / "pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def signal_and_wait(pid: int, sig: int, timeout: float = 5.0) -> bool:
    """Send `sig` to `pid` and wait until it is gone; False if it still runs at `timeout`."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


class PrivatePulse:
    """A pulseaudio daemon in its own runtime dir with one null sink."""

    def __init__(self, runtime_dir: Path) -> None:
        runtime_dir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir = runtime_dir
        self.env = private_env(runtime_dir)

    def full_env(self) -> dict[str, str]:
        return with_private(self.env)

    def start(self) -> None:
        start_null_sink(self.full_env())

    def stop(self) -> None:
        pid = daemon_pid(self.runtime_dir)
        if pid is not None and not signal_and_wait(pid, signal.SIGTERM):
            os.kill(pid, signal.SIGKILL)


def start_pulse(runtime_dir: Path) -> tuple[PrivatePulse | None, str]:
    """The null sink, or None and why not (the demo then skips its sound scene)."""
    missing = [t for t in ("pulseaudio", "parec", "pactl") if shutil.which(t) is None]
    if missing:
        return None, f"{', '.join(missing)} not installed (apt-get install pulseaudio)"
    pulse = PrivatePulse(runtime_dir)
    try:
        pulse.start()
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        pulse.stop()
        return None, f"private pulseaudio did not start ({exc})"
    return pulse, f"private PulseAudio null sink {SINK!r} in {runtime_dir}"


def _end_reader(proc: subprocess.Popen[Any], thread: threading.Thread | None) -> None:
    """Stop a child whose output a thread reads: TERM (KILL if it lingers), then the
    thread ends at the pipe's EOF."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    if thread is not None:
        thread.join(timeout=5)


class MonitorRecorder:
    """parec on a null sink's monitor, read continuously in a thread (reading late loses
    audio under load). Every block is stamped with the wall time it was read: the wall
    time of the first sample is the earliest `read time - samples so far / RATE` (reads
    only ever come late, so the minimum is the best estimate)."""

    def __init__(self, env: dict[str, str], *, sink: str = SINK, latency_ms: int = 20) -> None:
        self.env = env
        self.sink = sink
        self.latency_ms = latency_ms
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._nbytes = 0
        self.start_wall: float | None = None

    def start(self) -> None:
        self._chunks = []
        self._nbytes = 0
        self.start_wall = None
        self._proc = subprocess.Popen(
            ["parec", f"--latency-msec={self.latency_ms}", f"--device={self.sink}.monitor",
             f"--rate={RATE}", "--channels=1", "--format=float32le", "--raw"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while data := os.read(fd, 65536):
            now = time.time()
            with self._lock:
                self._chunks.append(data)
                self._nbytes += len(data)
                est = now - (self._nbytes // 4) / RATE
                if self.start_wall is None or est < self.start_wall:
                    self.start_wall = est

    @property
    def frames(self) -> int:
        """Samples recorded so far."""
        with self._lock:
            return self._nbytes // 4

    def stop(self) -> None:
        if self._proc is not None:
            _end_reader(self._proc, self._thread)
        self._proc = None
        self._thread = None

    @property
    def samples(self) -> np.ndarray:
        with self._lock:
            raw = b"".join(self._chunks)
        return np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4").astype(np.float32)


class Recording:
    """What the demo's sink hears from now until `stop()`."""

    def __init__(self, pulse: PrivatePulse) -> None:
        self._recorder = MonitorRecorder(pulse.full_env())
        self._recorder.start()

    def stop(self) -> Heard:
        self._recorder.stop()
        return measure(self._recorder.samples)


def measure(x: np.ndarray) -> Heard:
    """Audible seconds and peak of float samples at RATE. Pure."""
    if x.size == 0 or not np.any(x):
        return Heard(0.0, None)
    w = RATE // 100
    n = len(x) // w
    env = np.sqrt(np.mean(np.square(x[: n * w].astype(np.float64)).reshape(n, w), axis=1))
    loud = int(np.count_nonzero(env > 10 ** (AUDIBLE_DBFS / 20)))
    peak = float(np.max(np.abs(x)))
    return Heard(loud / 100, 20 * float(np.log10(peak)))


class ProofWatch:
    """Collects `tcs-central watch --json` lines in a thread, to find the alert's proof."""

    def __init__(self, cmd: list[str]) -> None:
        self.lines: list[dict[str, object]] = []
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                continue

    def proof(self, alert_id: str, timeout: float) -> dict[str, object] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                claims = line.get("proof")
                if (
                    line.get("kind") == "proof"
                    and isinstance(claims, dict)
                    and claims.get("alert_id") == alert_id
                ):
                    return line
            time.sleep(0.1)
        return None

    def stop(self) -> None:
        _end_reader(self._proc, self._thread)


def summary(heard: Heard, proof: dict[str, object] | None) -> str:
    """The one line the demo prints about what the sink heard. Pure."""
    if heard.peak_dbfs is None or heard.seconds == 0:
        sound = "alert NOT heard: silence at the null sink"
    else:
        sound = f"alert heard: {heard.seconds:.1f} s of sound, peak {heard.peak_dbfs:.0f} dBFS"
    if proof is None:
        return f"{sound}, no proof received"
    verdict = proof.get("verdict")
    return f"{sound}, proof {'verified' if verdict == 'VERIFIED' else verdict}"
