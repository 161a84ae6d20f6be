"""Video slides: checked at prefetch, pre-rolled before their slot, decoded by VLC in its
own process (display/vlcframes.py), frames shown by the presenter like any scene.

- `probe()` asks ffprobe for the codec and frame size when the media is cached;
  `unplayable_reason()` compares them with what this board decodes in hardware
  (`[display] video_codecs`, `video_max`). A video the board can only decode in
  software (H.264 on a Raspberry Pi 5) would stutter on an LED wall: it gets a
  `media_unplayable` event at prefetch, before its slot, and is skipped.
- `VideoScene.open()` starts the decoder and waits for the first frame (pre-roll), so
  at the slot the first frame is already in memory: no black gap before a video.
- The last frame stays on the board after the end until the next slide is cued.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
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
        self, path: Path, info: VideoInfo, size: tuple[int, int], background: str = "#000000"
    ) -> None:
        self.path = path
        self.info = info
        self._size = size
        self._background = background
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
        """Start the decoder and wait for the first frame (VideoError if none comes)."""
        w, h = self._video_size
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "display.vlcframes", str(self.path), str(w), str(h)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
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
            if proc.stdout.readline() != b"READY\n":
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
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
