"""`tcs-agent test display`: a technician's on-site check of the board.

Shows the test pattern (colour bars, border, diagonal: every pixel, colour and edge)
for `--seconds`, then puts back what the board showed before (the current slide).
`--screenshot FILE` saves that current slide as PNG first: what the screen shows,
for remote diagnosis over SSH. A framebuffer is read back; an image-dir board's last
frame is its last PNG; a MAX7219 chain cannot be read, so there is no screenshot
and the running agent redraws it at its next frame or re-initialisation.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from agent.i18n import _


def current_frame(board: Any) -> Any:
    """What the board shows now, as an RGB image, or None if it cannot be read back."""
    from PIL import Image

    from display.imagedir import ImageDirBoard, read_frames

    if isinstance(board, ImageDirBoard):
        lines = read_frames(board.folder)
        if not lines:
            return None
        with Image.open(board.folder / lines[-1]["file"]) as img:
            return img.convert("RGB")
    read = getattr(board, "read", None)
    return None if read is None else read()


def cmd_test_display(args: argparse.Namespace) -> int:
    from agent.config import ConfigError, load_config
    from display.board import BoardError, open_board
    from display.frames import frame_sha256
    from display.render import test_pattern

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    if cfg.display.kind == "none":
        print(_("{file}: [display] kind is none: no board to test").format(file=args.config),
              file=sys.stderr)
        return 1
    try:
        board = open_board(cfg.display)
    except BoardError as e:
        print(_("display {kind} {path}: FAILED to open: {error}").format(
            kind=cfg.display.kind, path=cfg.display.path, error=e))
        return 1
    try:
        size = board.size
        print(_("display {kind} {path} {width}x{height}: open").format(
            kind=cfg.display.kind, path=cfg.display.path or "", width=size[0], height=size[1]))
        before = current_frame(board)
        if args.screenshot is not None:
            if before is None:
                print(_("screenshot: not possible, a {kind} board cannot be read back").format(
                    kind=cfg.display.kind))
            else:
                before.save(args.screenshot)
                print(_("screenshot: {file} (frame_sha256 {sha})").format(
                    file=args.screenshot, sha=frame_sha256(before)))
        pattern = test_pattern(size)
        board.show(pattern, item="test")
        print(_("test pattern shown: frame_sha256 {sha}").format(sha=frame_sha256(pattern)))
        time.sleep(max(0.0, args.seconds))
        if before is not None:
            board.show(
                before.convert(board.mode) if board.mode != "RGB" else before, item="restored"
            )
            print(_("current slide restored: frame_sha256 {sha}").format(sha=frame_sha256(before)))
        else:
            print(_("current slide: the agent redraws it"))
        return 0
    except BoardError as e:
        print(_("display: FAILED: {error}").format(error=e))
        return 1
    finally:
        board.close()
