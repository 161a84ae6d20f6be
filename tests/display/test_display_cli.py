"""`tcs-agent test display`: test pattern, then the current slide back; --screenshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from support.config import good_config_text

from agent.cli import main
from agent.config import DisplayConfig
from display import render
from display.board import open_board
from display.framebuffer import FramebufferBoard
from display.frames import frame_sha256


def test_pattern_then_current_slide_with_screenshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fb = tmp_path / "fb0"
    fb.write_bytes(b"")
    display = DisplayConfig(kind="framebuffer", path=str(fb), width=160, height=90, bpp=16)
    board = open_board(display)
    assert isinstance(board, FramebufferBoard)
    slide = Image.new("RGB", (160, 90), "#FF0000")
    slide.paste((0, 0, 255), (0, 45, 160, 90))
    board.show(slide)  # what the agent showed before the technician's test
    board.close()
    config = tmp_path / "agent.toml"
    config.write_text(
        good_config_text(tmp_path).replace(
            "[report]",
            f'[display]\nkind = "framebuffer"\npath = "{fb}"\nwidth = 160\nheight = 90\n'
            "bpp = 16\n\n[report]",
        )
    )
    shot = tmp_path / "shot.png"
    code = main(["test", "display", "-c", str(config), "--screenshot", str(shot), "--seconds", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"test pattern shown: frame_sha256 {frame_sha256(render.test_pattern((160, 90)))}" in out
    with Image.open(shot) as img:
        assert img.getpixel((5, 5)) == (255, 0, 0) and img.getpixel((5, 80)) == (0, 0, 255)
    again = open_board(display)
    assert isinstance(again, FramebufferBoard)
    assert frame_sha256(again.read()) == frame_sha256(slide)  # restored
    again.close()


def test_no_board_configured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(good_config_text(tmp_path))
    assert main(["test", "display", "-c", str(config), "--seconds", "0"]) == 1
    assert "no board to test" in capsys.readouterr().err
