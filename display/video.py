"""Video slides: checked at prefetch, pre-rolled before their slot, decoded by VLC in its
own process (display/vlcframes.py), frames shown by the presenter like any scene.

- `probe()` asks ffprobe for the codec and frame size when the media is cached;
  `unplayable_reason()` compares them with what this board decodes in hardware
  (`[display] video_codecs`, `video_max`). A video the board can only decode in
  software (H.264 on a Raspberry Pi 5) would stutter on an LED wall: it gets a
  `media_unplayable` event at prefetch, before its slot, and is skipped.
- `VideoScene.open()` hands the file to a decoder and waits for the first frame
  (pre-roll); the decoder then pauses, so at the slot the first frame is already in
  memory and `begin()` resumes playback on that frame: no black gap before a video,
  nothing skipped after it. The decoder process comes warm from a `DecoderPool` (its
  Python and libVLC already loaded), so a pre-roll costs only opening the file and
  decoding one frame, not a process start that takes over a second on a loaded Pi.
- The last frame stays on the board after the end until the next slide is cued.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from display.scene import Clock

_PROBE_TIMEOUT_S = 20.0


class VideoError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    duration_s: float | None


def probe(path: Path) -> VideoInfo:
    """ffprobe the first video stream; VideoError if there is none or ffprobe fails."""
    try:
        done = subprocess.run(
            [
                "ffprobe", "-v", "error", "-select_streams", "v:0",
                "-show_entries", "stream=codec_name,width,height:format=duration",
                "-of", "json", str(path),
            ],
            capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        raise VideoError(f"ffprobe {path.name}: {e}") from None
    if done.returncode != 0:
        raise VideoError(f"ffprobe {path.name}: {done.stderr.strip()[:200] or 'failed'}")
    data = json.loads(done.stdout or "{}")
    streams = data.get("streams") or []
    if not streams:
        raise VideoError(f"{path.name} has no video stream")
    s = streams[0]
    duration = data.get("format", {}).get("duration")
    return VideoInfo(
        str(s.get("codec_name", "?")),
        int(s.get("width", 0)),
        int(s.get("height", 0)),
        float(duration) if duration not in (None, "N/A") else None,
    )


def unplayable_reason(
    info: VideoInfo, codecs: tuple[str, ...], max_size: tuple[int, int]
) -> str | None:
    """Why this board cannot play `info` smoothly, or None if it can."""
    if info.codec not in codecs:
        hw = ", ".join(codecs) or "none"
        return f"codec {info.codec} is not decoded in hardware here ({hw})"
    if info.width > max_size[0] or info.height > max_size[1]:
        return (
            f"{info.width}x{info.height} is larger than the hardware decoder's "
            f"{max_size[0]}x{max_size[1]}"
        )
    return None


def _spawn_decoder() -> subprocess.Popen[bytes]:
    """A decoder process in warm mode (display/vlcframes.py): it loads libVLC, says
    `WARM` and waits for a file."""
    return subprocess.Popen(
        [sys.executable, "-m", "display.vlcframes"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _end(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class DecoderPool:
    """One decoder process kept warm for the next video slide.

    `warm()` starts one if none is waiting (the board calls it when it prepares a video
    slide, minutes ahead); `take()` hands the waiting one over (or starts one cold) and
    warms the next, so consecutive videos each find one ready. Costs one idle process
    (Python + libVLC) once the board has shown a video.
    """

    def __init__(self, spawn: Callable[[], subprocess.Popen[bytes]] = _spawn_decoder) -> None:
        self._spawn = spawn
        self._lock = threading.Lock()
        self._spare: subprocess.Popen[bytes] | None = None
        self._closed = False

    def warm(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._spare is not None and self._spare.poll() is None:
                return
            self._spare = self._spawn()

    def take(self) -> subprocess.Popen[bytes]:
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is None or spare.poll() is not None:
            spare = self._spawn()
        self.warm()
        return spare

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None:
            _end(spare)


def _contain(src: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    scale = min(box[0] / src[0], box[1] / src[1])
    # Even sizes: VLC's chroma converters want them.
    return max(2, int(src[0] * scale) // 2 * 2), max(2, int(src[1] * scale) // 2 * 2)


class VideoScene:
    """A video as a presenter scene. `open()` pre-rolls; `begin()` starts playback."""

    clock: Clock | None = None
    animated = True
    mono = False
    notes: tuple[str, ...] = ()

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        size: tuple[int, int],
        background: str = "#000000",
        *,
        pool: DecoderPool | None = None,
    ) -> None:
        self.path = path
        self.info = info
        self._size = size
        self._background = background
        self._pool = pool
        self._video_size = _contain((info.width, info.height), size)
        self._proc: subprocess.Popen[bytes] | None = None
        self._latest: Image.Image | None = None
        self._first: Image.Image | None = None
        self._last_new = time.monotonic()
        self._playing = False
        self.ended = threading.Event()
        self.frames = 0

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def open(self, timeout_s: float = 20.0) -> None:
        """Hand the file to a (warm) decoder and wait for the first frame (VideoError if
        none comes); the decoder then waits, paused, for `begin()`."""
        w, h = self._video_size
        self._proc = self._pool.take() if self._pool is not None else _spawn_decoder()
        job = json.dumps({"path": str(self.path), "width": w, "height": h}) + "\n"
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(job.encode())
            self._proc.stdin.flush()
        except OSError:
            self.close()
            raise VideoError(f"{self.path.name}: the decoder process is gone") from None
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True, name="video-read").start()
        if not ready.wait(timeout_s) or self._first is None:
            self.close()
            raise VideoError(f"{self.path.name}: the decoder produced no frame")

    def _frame(self, raw: bytes) -> Image.Image:
        w, h = self._video_size
        video = Image.frombuffer("RGB", (w, h), raw, "raw", "RGB", 0, 1)
        if (w, h) == self._size:
            return video.copy()
        page = Image.new("RGB", self._size, self._background)
        page.paste(video, ((self._size[0] - w) // 2, (self._size[1] - h) // 2))
        return page

    def _read(self, ready: threading.Event) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        n = self._video_size[0] * self._video_size[1] * 3
        try:
            if proc.stdout.readline() != b"WARM\n" or proc.stdout.readline() != b"READY\n":
                return
            while True:
                raw = proc.stdout.read(n)
                if len(raw) < n:
                    return
                frame = self._frame(raw)
                if self._first is None:
                    self._first = frame
                    ready.set()
                self._latest = frame
                self._last_new = time.monotonic()
                self.frames += 1
        finally:
            ready.set()
            self.ended.set()

    def begin(self) -> None:
        """The first frame is on the board: let the decoder run on VLC's clock."""
        proc = self._proc
        if proc is not None and proc.stdin is not None and not self._playing:
            self._playing = True
            self._last_new = time.monotonic()
            try:
                proc.stdin.write(b"go\n")
                proc.stdin.flush()
            except OSError:
                self.ended.set()

    def stalled_s(self) -> float:
        """Seconds since a new frame arrived while the video should be playing."""
        if not self._playing or self.ended.is_set():
            return 0.0
        return time.monotonic() - self._last_new

    def frame(self, elapsed: float, wall: float) -> Image.Image:
        frame = self._latest or self._first
        if frame is None:
            raise VideoError(f"{self.path.name} was not opened")
        return frame

    def changing_rows(self) -> tuple[int, int] | None:
        return None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc)
