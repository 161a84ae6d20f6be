"""The video decoder process: VLC decodes one file into raw RGB frames on stdout.

Run as `python -m display.vlcframes` (warm start) or `python -m display.vlcframes FILE
WIDTH HEIGHT`. VLC lives in its own process so a decoder crash or leak never takes the
agent with it (peers' browser kiosks die of memory). Protocol, all binary on stdout:

- warm start: the line `WARM\\n` once Python, libVLC and its plugins are loaded (the
  slow part: 0.3 s idle, 1-1.5 s on a loaded 2-core machine, measured); then the agent
  writes one JSON line `{"path": ..., "width": ..., "height": ...}` on stdin when it
  has a video to pre-roll. The board keeps one such process waiting (display/video.py
  `DecoderPool`), so a pre-roll costs only opening the file and decoding one frame;
- header line `READY\\n` once the first frame is decoded, followed by that frame. The
  player is then *paused* (its clock stops), so however long the agent holds it before
  the slot, playback resumes from the second frame on VLC's clock: nothing is skipped
  and the end is not reached early (a decoder merely held on its display callback kept
  its clock running and, held 3 s, played nothing after the first frame: measured);
- the agent writes `go\\n` on stdin at the slot: playback resumes;
- each frame: WIDTH*HEIGHT*3 bytes RGB24, letterboxed by VLC to the board's size;
- EOF when the file ends, or on `stop\\n` or stdin closed.
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
from typing import Any

VLC_ARGS = ["--quiet", "--no-audio", "--no-video-title-show", "--no-xlib"]


def _job(argv: list[str]) -> tuple[str, int, int] | None:
    """The file to decode and the frame size: from argv, or (warm) from one stdin line."""
    if argv:
        return argv[0], int(argv[1]), int(argv[2])
    sys.stdout.buffer.write(b"WARM\n")
    sys.stdout.buffer.flush()
    line = sys.stdin.readline()
    if not line.strip():
        return None  # the agent closed us unused
    job = json.loads(line)
    width, height = int(job["width"]), int(job["height"])
    if not (0 < width <= 8192 and 0 < height <= 8192):
        raise SystemExit(f"vlcframes: bad frame size {width}x{height}")
    return str(job["path"]), width, height


def main(argv: list[str]) -> int:
    import vlc  # optional library, only in this process

    instance = vlc.Instance(VLC_ARGS)
    player = instance.media_player_new()
    job = _job(argv)
    if job is None:
        return 0
    path, width, height = job
    frame_bytes = width * height * 3
    buf = (ctypes.c_ubyte * frame_bytes)()
    buf_ptr = ctypes.cast(buf, ctypes.c_void_p)
    out = sys.stdout.buffer
    first = threading.Event()
    go = threading.Event()
    ended = threading.Event()
    lock = threading.Lock()
    control = threading.Lock()  # orders pause (after the first frame) and resume (go)

    @vlc.CallbackDecorators.VideoLockCb  # type: ignore[untyped-decorator]
    def lock_cb(_opaque: Any, planes: Any) -> None:
        planes[0] = buf_ptr

    @vlc.CallbackDecorators.VideoUnlockCb  # type: ignore[untyped-decorator]
    def unlock_cb(_opaque: Any, _picture: Any, _planes: Any) -> None:
        return None

    @vlc.CallbackDecorators.VideoDisplayCb  # type: ignore[untyped-decorator]
    def display_cb(_opaque: Any, _picture: Any) -> None:
        if not first.is_set():
            with lock:
                out.write(b"READY\n")
                out.write(bytes(buf))
                out.flush()
            first.set()
            # Hold the output on the first frame until the slot; the main thread pauses
            # the player meanwhile, so VLC's clock does not run on without us.
            go.wait()
            return
        with lock:
            try:
                out.write(bytes(buf))
                out.flush()
            except BrokenPipeError:
                ended.set()

    player.video_set_callbacks(lock_cb, unlock_cb, display_cb, None)
    player.video_set_format("RV24", width, height, width * 3)
    player.set_media(instance.media_new(path))
    events = player.event_manager()
    events.event_attach(vlc.EventType.MediaPlayerEndReached, lambda _e: ended.set())
    events.event_attach(vlc.EventType.MediaPlayerEncounteredError, lambda _e: ended.set())
    paused = False

    def commands() -> None:
        nonlocal paused
        for line in sys.stdin:
            if line.strip() == "go":
                with control:
                    if paused:
                        player.set_pause(0)
                        paused = False
                    go.set()
            elif line.strip() == "stop":
                break
        go.set()
        ended.set()

    player.play()
    threading.Thread(target=commands, daemon=True).start()
    while not (first.wait(0.05) or ended.is_set()):
        pass
    with control:
        if first.is_set() and not go.is_set():
            player.set_pause(1)
            paused = True
    ended.wait()
    go.set()
    player.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
