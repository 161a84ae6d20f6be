"""A private PulseAudio with a null sink, and a recorder of what reached it.

Real audio without a sound card (see ../shared/TESTING-NOTES.md): PulseAudio is
started with `-n` in its own XDG_RUNTIME_DIR with one null sink (`norewinds=1`, or
leading audio is lost); PortAudio reaches it through ALSA's "pulse" device. The
recorder runs `parec` on the sink's monitor and reads its stdout continuously in a
thread (reading late loses audio under load). Every recorded block is stamped with
the wall time it was read; the wall time of the first sample is the earliest
`read time - samples so far / rate` (reads only ever come late, so the minimum is
the best estimate). The recipe and the recorder are scripts/demo_sound.py's (the demo
uses them too); this module adds what the tests need around them.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest
from support.scripts import load_script

RATE = 48000
SINK = "edge_null"


def load_demo_sound() -> ModuleType:
    """scripts/demo_sound.py, the one implementation of the null-sink recipe and the
    recorder (scripts/ is not a package: loaded by path, once)."""
    return load_script("demo_sound")


_sound = load_demo_sound()
assert _sound.RATE == RATE


class PulseServer:
    """A private pulseaudio daemon; `start()` / `kill()` may be repeated (device pulled)."""

    def __init__(self, runtime_dir: Path, *, channels: int = 1) -> None:
        self.runtime_dir = runtime_dir
        self.channels = channels
        self.env: dict[str, str] = _sound.with_private(_sound.private_env(runtime_dir))

    def start(self) -> None:
        _sound.start_null_sink(self.env, sink=SINK, channels=self.channels)

    def pid(self) -> int | None:
        pid: int | None = _sound.daemon_pid(self.runtime_dir)
        return pid

    def kill(self) -> None:
        """kill -9 the daemon: the output device vanishes as a pulled USB card does."""
        pid = self.pid()
        if pid is None:
            return
        _sound.signal_and_wait(pid, signal.SIGKILL)
        (self.runtime_dir / "pulse" / "pid").unlink(missing_ok=True)


class Recorder:
    """Records the null sink's monitor; `samples` is float32 mono at 48 kHz."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._rec = _sound.MonitorRecorder(env, sink=SINK, latency_ms=10)

    @property
    def start_wall(self) -> float | None:
        value: float | None = self._rec.start_wall
        return value

    def start(self) -> None:
        self._rec.start()
        # Wait until audio flows so nothing played right after start() is missed.
        deadline = time.monotonic() + 10
        while self._rec.frames < RATE * 0.05 and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._rec.frames == 0:
            raise RuntimeError("parec recorded nothing")

    def stop(self) -> None:
        self._rec.stop()

    @property
    def samples(self) -> np.ndarray:
        x: np.ndarray = self._rec.samples
        return x

    def wall_of(self, index: int) -> float:
        assert self.start_wall is not None
        return self.start_wall + index / RATE

    def index_of(self, wall: float) -> int:
        assert self.start_wall is not None
        return round((wall - self.start_wall) * RATE)

    def first_audible(
        self, threshold_db: float = -40.0, after: float | None = None
    ) -> float | None:
        """Wall time of the first sample whose magnitude exceeds `threshold_db` dBFS."""
        x = self.samples
        start = 0 if after is None else max(0, self.index_of(after))
        hits = np.flatnonzero(np.abs(x[start:]) > 10 ** (threshold_db / 20))
        return None if hits.size == 0 else self.wall_of(start + int(hits[0]))

    def wait_silence_after(self, wall: float, timeout: float = 10.0) -> None:
        """Block until the recording covers `wall` (audio up to then has been captured)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self._rec.frames
            start_wall = self.start_wall
            if start_wall is not None and start_wall + n / RATE >= wall:
                return
            time.sleep(0.02)
        raise TimeoutError("recording did not reach the requested time")


class PulseRig:
    """What the fixture yields: the server (to pull the device) and a recorder."""

    def __init__(self, server: PulseServer) -> None:
        self.server = server
        self.recorder = Recorder(server.env)
        self.env = server.env


def pulse_available() -> bool:
    return all(shutil.which(t) for t in ("pulseaudio", "parec", "pactl"))


@pytest.fixture
def pulse(monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseRig]:
    """A private PulseAudio null sink; the process env points PortAudio at it."""
    if not pulse_available():
        pytest.skip("pulseaudio/pulseaudio-utils not installed (apt-get install pulseaudio)")
    runtime = Path(tempfile.mkdtemp(prefix="tcs-pulse-"))
    server = PulseServer(runtime)
    rig = PulseRig(server)
    for key in ("XDG_RUNTIME_DIR", "PULSE_CLIENTCONFIG"):
        monkeypatch.setenv(key, server.env[key])
    monkeypatch.delenv("PULSE_SERVER", raising=False)
    server.start()
    try:
        yield rig
    finally:
        rig.recorder.stop()
        server.kill()
        shutil.rmtree(runtime, ignore_errors=True)


# ---- signals and comparisons -------------------------------------------------------


def programme_signal(seconds: float, rate: int = 48000, seed: int = 7) -> npt.NDArray[np.float32]:
    """A recognisable programme-like signal: a chord with a slow amplitude envelope
    and a little noise, so cross-correlation has a single sharp peak."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 0.7 * t) ** 2
    x = env * (0.25 * np.sin(2 * np.pi * 330 * t) + 0.15 * np.sin(2 * np.pi * 523 * t))
    x += 0.03 * rng.standard_normal(n)
    fade = min(n // 2, rate // 100)
    x[:fade] *= np.linspace(0, 1, fade)
    x[n - fade :] *= np.linspace(1, 0, fade)
    return x.astype(np.float32)


def write_wav(path: Path, x: npt.NDArray[np.float32], rate: int = 48000) -> Path:
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def write_mp3(path: Path, x: npt.NDArray[np.float32], rate: int = 48000) -> Path:
    wav = write_wav(path.with_suffix(".src.wav"), x, rate)
    subprocess.run(["lame", "--quiet", "-b", "128", str(wav), str(path)], check=True, timeout=60)
    wav.unlink()
    return path


def envelope(
    x: npt.NDArray[np.float32], rate: int = 48000, win_s: float = 0.01
) -> npt.NDArray[np.float64]:
    w = round(rate * win_s)
    n = len(x) // w
    return np.sqrt(np.mean(np.square(x[: n * w].astype(np.float64)).reshape(n, w), axis=1))


def best_alignment(recorded: npt.NDArray[np.float32], source: npt.NDArray[np.float32]) -> int:
    """Index in `recorded` where `source` begins (FFT cross-correlation)."""
    n = len(recorded) + len(source)
    size = 1 << (n - 1).bit_length()
    r = np.fft.irfft(np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(source, size)), size)
    return int(np.argmax(r[: len(recorded) - len(source) + 1]))


def correlation(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> float:
    n = min(len(a), len(b))
    a = np.asarray(a[:n], dtype=np.float64)
    b = np.asarray(b[:n], dtype=np.float64)
    a = a - a.mean()
    b = b - b.mean()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
