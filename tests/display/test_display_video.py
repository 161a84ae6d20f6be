"""Video slides: a generated clip's colour bars reach the board through VLC in its own
process; a codec the board cannot decode in hardware is refused at prefetch."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image
from support.boards import frames, poll

from display.imagedir import ImageDirBoard
from display.presenter import Presenter
from display.video import VideoScene, probe, unplayable_reason

# SMPTE bars, left to right (75 % grey, yellow, cyan, green, magenta, red, blue).
BARS = [
    (191, 191, 191),
    (191, 191, 0),
    (0, 191, 191),
    (0, 191, 0),
    (191, 0, 191),
    (191, 0, 0),
    (0, 0, 191),
]


def clip(tmp_path: Path, codec: str, size: str = "320x240", seconds: int = 2) -> Path:
    out = tmp_path / f"bars-{codec}.mp4"
    encoder = {
        "hevc": ["-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error"],
        "h264": ["-c:v", "libx264"],
    }[codec]
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"smptebars=size={size}:rate=25", "-t", str(seconds), *encoder,
         "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )  # fmt: skip
    return out


def near(pixel: tuple[int, ...], want: tuple[int, int, int], tol: int = 24) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, want, strict=False))


def test_colour_bars_reach_the_board(tmp_path: Path) -> None:
    path = clip(tmp_path, "hevc")
    info = probe(path)
    assert (info.codec, info.width, info.height) == ("hevc", 320, 240)
    assert unplayable_reason(info, ("hevc",), (1920, 1080)) is None
    out = tmp_path / "frames"
    board = ImageDirBoard(out, (400, 240))  # wider than the clip: letterboxed
    scene = VideoScene(path, info, board.size)
    scene.open()  # pre-roll: the first frame is decoded before the slot
    presenter = Presenter(board, fps=10)
    presenter.start()
    try:
        presenter.cue(scene, item="video", at=time.time() + 0.2)
        poll(lambda: scene.ended.is_set())
        poll(lambda: len(frames(out)) >= 5)
    finally:
        presenter.stop()
    assert scene.frames >= 40  # 2 s at 25 fps, every frame decoded
    lines = frames(out)
    assert {line["item"] for line in lines} == {"video"}
    last = Image.open(out / lines[-1]["file"]).convert("RGB")
    # 320x240 in 400x240: 40 px black each side; the seven bars across the middle.
    assert near(last.getpixel((10, 60)), (0, 0, 0))
    for i, colour in enumerate(BARS):
        x = 40 + int((i + 0.5) * 320 / 7)
        assert near(last.getpixel((x, 60)), colour), (i, last.getpixel((x, 60)))


def test_software_only_codec_is_refused_at_prefetch(tmp_path: Path) -> None:
    info = probe(clip(tmp_path, "h264", seconds=1))
    reason = unplayable_reason(info, ("hevc",), (1920, 1080))
    assert reason is not None and "h264" in reason
    assert "larger" in (unplayable_reason(info, ("h264",), (160, 120)) or "")


def test_not_a_video_is_a_clear_error(tmp_path: Path) -> None:
    from display.video import VideoError

    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoError, match=r"x\.mp4"):
        probe(bad)


def test_a_stalled_decoder_is_caught_by_the_watchdog(tmp_path: Path) -> None:
    import os
    import signal

    path = clip(tmp_path, "hevc", seconds=8)
    board = ImageDirBoard(tmp_path / "frames", (160, 120))
    scene = VideoScene(path, probe(path), board.size)
    scene.open()
    problems: list[str] = []
    presenter = Presenter(board, fps=10, on_problem=lambda _c, d: problems.append(d))
    presenter.start()
    proc = scene._proc
    assert proc is not None
    try:
        presenter.cue(scene, item="video")
        poll(lambda: scene.frames >= 10)
        assert presenter.check() is None
        os.kill(proc.pid, signal.SIGSTOP)  # a decoder that hangs: frames stop coming
        poll(lambda: presenter.check(), timeout=30)
        assert any("decoder" in p for p in problems)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        presenter.stop()


def ramp_clip(tmp_path: Path) -> Path:
    """3 s at 25 fps, frame N a flat grey of level 16 + 2N (limited range): which frame
    is shown can be read from any pixel."""
    out = tmp_path / "ramp.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "nullsrc=s=64x48:r=25,geq=lum='16+2*N':cb=128:cr=128", "-t", "3",
         "-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error:lossless=1",
         "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )  # fmt: skip
    return out


def test_a_video_held_before_its_slot_plays_from_its_start(tmp_path: Path) -> None:
    """Pre-rolled long before its slot (here 3.5 s, longer than the clip), the decoder
    waits paused: at the slot the video plays from its first frames to its end, none
    skipped (a decoder held without pausing ran its clock on and showed nothing more)."""
    from display.video import DecoderPool

    path = ramp_clip(tmp_path)
    out = tmp_path / "frames"
    board = ImageDirBoard(out, (64, 48))
    pool = DecoderPool()
    scene = VideoScene(path, probe(path), board.size, pool=pool)
    presenter = Presenter(board, fps=25)
    presenter.start()
    try:
        scene.open()
        slot = time.time() + 3.5
        presenter.cue(scene, item="ramp", at=slot)
        poll(lambda: scene.ended.is_set(), timeout=30)
    finally:
        presenter.stop()
        pool.close()
    shown = frames(out)
    levels = [Image.open(out / line["file"]).convert("L").getpixel((32, 24)) for line in shown]
    assert shown[0]["t"] >= slot  # nothing shown before the slot
    assert scene.frames >= 70  # the clip's 75 frames decoded after the slot, not skipped
    assert levels == sorted(levels)  # in order
    assert levels[1] - levels[0] <= 20  # resumed at its start, not seconds in
    assert levels[-1] > 150  # ... and played to its end
