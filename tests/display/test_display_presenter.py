"""Slides as a viewer sees them: on time, never a black frame between them, smooth
marquees, and a watchdog that notices a frozen or overdrawn screen."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from PIL import Image
from support.boards import black_sha, first_frames, frames, poll

from agent.config import DisplayConfig
from display.board import open_board
from display.imagedir import ImageDirBoard
from display.presenter import Presenter, Shown
from display.render import Style, image_scene, text_scene

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_rotation_first_frames_on_time_without_black(tmp_path: Path) -> None:
    size = (320, 180)
    board = ImageDirBoard(tmp_path, size)
    shown: list[Shown] = []
    presenter = Presenter(board, fps=10, on_shown=shown.append)
    presenter.start()
    try:
        t0 = time.time() + 0.5
        slides = {
            "s1": text_scene("Lịch tiêm chủng", Style(background="#003366"), size, TZ),
            "s2": image_scene(Image.new("RGB", (64, 64), "#00AA00"), Style(), size),
            "s3": text_scene("Ữ ỗ ặ ễ", Style(title="Thông báo"), size, TZ),
        }
        for i, (item, scene) in enumerate(slides.items()):
            presenter.cue(scene, item=item, at=t0 + 0.4 * i)
        poll(lambda: len(shown) == 3)
    finally:
        presenter.stop()
    first = first_frames(tmp_path)
    for i, item in enumerate(slides):
        assert abs(first[item]["t"] - (t0 + 0.4 * i)) <= 0.050, item
    # What was on the board, frame by frame: never black, each slide exactly once in turn.
    lines = frames(tmp_path)
    assert black_sha(size) not in {line["sha256"] for line in lines}
    assert [line["item"] for line in lines] == ["s1", "s2", "s3"]
    assert [s.sha256 for s in shown] == [line["sha256"] for line in lines]


def test_marquee_on_a_short_matrix_moves_smoothly(tmp_path: Path) -> None:
    size = (64, 16)
    board = ImageDirBoard(tmp_path, size, mode="1")
    presenter = Presenter(board, fps=20)
    scene = text_scene(
        "Thông báo: mất điện từ 8 giờ đến 11 giờ", Style(speed=20), size, TZ, mono=True
    )
    assert scene.animated
    presenter.start()
    try:
        presenter.cue(scene, item="m")
        poll(lambda: len(frames(tmp_path)) >= 12)
    finally:
        presenter.stop()
    images = [
        np.asarray(Image.open(tmp_path / line["file"]).convert("L")) > 0
        for line in frames(tmp_path)[:12]
    ]
    steps = []
    for a, b in itertools.pairwise(images):
        # The next frame is this one moved left by a small step (1 px at 20 px/s, 20 fps).
        step = next((s for s in range(0, 4) if (a[:, s:] == b[:, : b.shape[1] - s]).all()), None)
        assert step is not None, "frame is not a shift of the previous one"
        steps.append(step)
    assert sum(steps) >= 6 and max(steps) <= 3


def test_watchdog_redraws_an_overdrawn_framebuffer(tmp_path: Path) -> None:
    path = tmp_path / "fb"
    path.write_bytes(b"")
    board = open_board(
        DisplayConfig(kind="framebuffer", path=str(path), width=64, height=32, bpp=32)
    )
    problems: list[tuple[str, str]] = []
    presenter = Presenter(board, fps=10, on_problem=lambda c, d: problems.append((c, d)))
    presenter.start()
    try:
        presenter.cue(text_scene("Ặ", Style(), (64, 32), TZ), item="a")
        poll(lambda: presenter.shown)
        assert presenter.check() is None
        path.write_bytes(b"\x00" * (64 * 32 * 4))  # a console getty drawing over the screen
        assert presenter.check() is not None
        assert problems and problems[0][0] == "display_frozen"
        poll(lambda: board.read().getbbox())  # type: ignore[attr-defined]
    finally:
        presenter.stop()
        board.close()


def test_a_scene_that_fails_does_not_end_the_presenter(tmp_path: Path) -> None:
    class Broken:
        clock = None
        animated = True
        size = (32, 16)

        def __init__(self) -> None:
            self.calls = 0

        def frame(self, elapsed: float, wall: float) -> Image.Image:
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("decoder gone")
            return Image.new("RGB", (32, 16), "#FFFFFF")

        def changing_rows(self) -> None:
            return None

        def begin(self) -> None:
            return None

        def close(self) -> None:
            return None

    board = ImageDirBoard(tmp_path, (32, 16))
    problems: list[str] = []
    presenter = Presenter(board, fps=20, on_problem=lambda c, _d: problems.append(c))
    presenter.start()
    try:
        presenter.cue(Broken(), item="broken")
        poll(lambda: "display_failed" in problems)
        presenter.cue(text_scene("Vẫn chạy", Style(), (32, 16), TZ, mono=True), item="next")
        poll(lambda: presenter.shown is not None and presenter.shown.item == "next")
    finally:
        presenter.stop()
