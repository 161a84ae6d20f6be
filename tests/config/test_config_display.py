"""[display] keys for boards: accepted values and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config import good_config_text

from agent.config import BrightnessStep, ConfigError, parse_config


def with_display(tmp_path: Path, body: str) -> str:
    text = good_config_text(tmp_path)
    assert text.count("[report]") == 1
    return text.replace("[report]", f"[display]\n{body}\n\n[report]")


def test_full_max7219_section(tmp_path: Path) -> None:
    body = """kind = "max7219"
cascaded = 4
rotate = 2
block_orientation = -90
blocks_arranged_in_reverse_order = true
contrast = 200
reinit_s = 120
brightness = ["22:00=10", "06:00=100", "18:30=60"]
on_hours = "05:30-22:30"
power_control = "none"
"""
    d = parse_config(with_display(tmp_path, body), tmp_path / "a.toml").display
    assert (d.width, d.height, d.rotate, d.block_orientation) == (32, 8, 2, -90)
    assert d.blocks_arranged_in_reverse_order and d.contrast == 200 and d.reinit_s == 120
    assert d.brightness == (
        BrightnessStep(360, 100),
        BrightnessStep(18 * 60 + 30, 60),
        BrightnessStep(22 * 60, 10),
    )
    assert d.on_hours is not None and d.on_hours.contains(6 * 60)


def test_file_backed_framebuffer(tmp_path: Path) -> None:
    body = 'kind = "framebuffer"\npath = "fb"\nwidth = 1920\nheight = 1080\nbpp = 16\n'
    body += 'power_control = "cec"\nvideo_codecs = ["hevc", "h264"]\nvideo_max = "3840x2160"'
    d = parse_config(with_display(tmp_path, body), tmp_path / "a.toml").display
    assert d.bpp == 16 and d.path == str(tmp_path / "fb") and d.power_control == "cec"
    assert d.video_codecs == ("hevc", "h264") and d.video_max == (3840, 2160)


def test_a_framebuffer_device_needs_no_size(tmp_path: Path) -> None:
    d = parse_config(
        with_display(tmp_path, 'kind = "framebuffer"\npath = "/dev/fb0"'), tmp_path / "a.toml"
    )
    assert (d.display.width, d.display.height, d.display.bpp) == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        (
            'kind = "framebuffer"\npath = "fb"\nwidth = 64\nheight = 32\nbpp = 24',
            "display.bpp",
            "16 (RGB565) or 32",
        ),
        (
            'kind = "max7219"\nwidth = 32\nheight = 8\nblock_orientation = 45',
            "display.block_orientation",
            "0, 90, -90 or 180",
        ),
        (
            'kind = "max7219"\nwidth = 32\nheight = 8\nrotate = 4',
            "display.rotate",
            "between 0 and 3",
        ),
        (
            'kind = "max7219"\nwidth = 32\nheight = 8\ncontrast = 300',
            "display.contrast",
            "between 0 and 255",
        ),
        ('kind = "max7219"\ncascaded = 4\nwidth = 64', "display.cascaded", "32x8 panel"),
        (
            'kind = "image-dir"\npath = "f"\nwidth = 8\nheight = 8\ncascaded = 4',
            "display.cascaded",
            "for kind 'max7219' only",
        ),
        ('brightness = ["19:00=60", "7:00=100"]', "display.brightness[1]", "HH:MM=PERCENT"),
        ('brightness = ["19:00=160"]', "display.brightness[0]", "HH:MM=PERCENT"),
        ('brightness = ["19:00=60", "19:00=20"]', "display.brightness[1]", "repeats"),
        ('on_hours = "6-22"', "display.on_hours", "HH:MM-HH:MM"),
        ('power_control = "hdmi"', "display.power_control", "cec, dpms"),
        ('video_codecs = ["h265"]', "display.video_codecs[0]", "hevc"),
        ('video_max = "1080p"', "display.video_max", "WIDTHxHEIGHT"),
        ("fps = 0", "display.fps", "between 1 and 60"),
        ('kind = "max7219"\ncascaded = 4\npath = "/dev/spi0"', "display.path", "/dev/spidevB.D"),
    ],
)
def test_one_clear_problem(tmp_path: Path, body: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(with_display(tmp_path, body), tmp_path / "a.toml")
    assert len(info.value.problems) == 1, info.value.problems
    problem = info.value.problems[0]
    assert f":{where}: " in problem and words in problem, problem
