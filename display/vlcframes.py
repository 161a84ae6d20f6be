"""The video decoder process: VLC decodes one file into raw RGB frames on stdout.

Run as `python -m display.vlcframes FILE WIDTH HEIGHT`. VLC lives in its own process
so a decoder crash or leak never takes the agent with it (peers' browser kiosks die of
memory). Protocol, all binary on stdout after a one-line header:

- header line `READY\\n` once the first frame is decoded (pre-rolled, paused);
- the agent writes `go\\n` on stdin at the slot: playback starts on VLC's clock;
- each frame: WIDTH*HEIGHT*3 bytes RGB24, letterboxed by VLC to the board's size;
- EOF when the file ends, or on `stop\\n`.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any


def main(argv: list[str]) -> int:
    import vlc  # optional library, only in this process

    path, width, height = argv[0], int(argv[1]), int(argv[2])
    frame_bytes = width * height * 3
    buf = (ctypes.c_ubyte * frame_bytes)()
    buf_ptr = ctypes.cast(buf, ctypes.c_void_p)
    out = sys.stdout.buffer
    first = threading.Event()
    go = threading.Event()
    ended = threading.Event()
    lock = threading.Lock()

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
            go.wait()  # hold the decoder on the first frame until the slot
            return
        with lock:
            try:
                out.write(bytes(buf))
                out.flush()
            except BrokenPipeError:
                ended.set()

    instance = vlc.Instance(["--quiet", "--no-audio", "--no-video-title-show", "--no-xlib"])
    player = instance.media_player_new()
    player.video_set_callbacks(lock_cb, unlock_cb, display_cb, None)
    player.video_set_format("RV24", width, height, width * 3)
    player.set_media(instance.media_new(path))
    events = player.event_manager()
    events.event_attach(vlc.EventType.MediaPlayerEndReached, lambda _e: ended.set())
    events.event_attach(vlc.EventType.MediaPlayerEncounteredError, lambda _e: ended.set())
    player.play()

    def commands() -> None:
        for line in sys.stdin:
            if line.strip() == "go":
                go.set()
            elif line.strip() == "stop":
                break
        go.set()
        ended.set()

    threading.Thread(target=commands, daemon=True).start()
    ended.wait()
    go.set()
    player.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
