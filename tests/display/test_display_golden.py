"""Golden images: Vietnamese on 32x8 (fallback), 64x16, 128x32 and 1920x1080 with the
hardest stacked marks, and a Khmer line, compared with a tolerance (font hinting and
Pillow versions move single pixels, not whole letters).

Regenerate after a deliberate rendering change: `TCS_UPDATE_GOLDEN=1 pytest tests/display`
and look at the PNGs before committing them.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image

from display import fonts
from display.board import fit_to
from display.render import Style, text_scene

GOLDEN = Path(__file__).parent / "golden"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
VI = "Khẩn: lũ về, đặc biệt ặ ễ Ữ ỗ"
KM = "ព័ត៌មានសំខាន់សម្រាប់ប្រជាពលរដ្ឋ"
CASES = {
    "vi_32x8": (VI, (32, 8), True),
    "vi_64x16": (VI, (64, 16), True),
    "vi_128x32": ("Ặ ễ Ữ ỗ", (128, 32), True),
    "vi_1920x1080": (VI + ". Người dân di chuyển đến nơi an toàn.", (1920, 1080), False),
    "km_640x120": (KM, (640, 120), False),
}


def render(name: str) -> Image.Image:
    text, size, mono = CASES[name]
    frame = text_scene(text, Style(), size, TZ, mono=mono).frame(0.0, 0.0)
    return fit_to(frame, size, "1" if mono else "RGB").convert("L")


def differing(a: Image.Image, b: Image.Image) -> float:
    """Fraction of pixels whose grey level differs by more than a quarter of the range."""
    x = np.asarray(a, dtype=np.int16)
    y = np.asarray(b, dtype=np.int16)
    return float((np.abs(x - y) > 64).mean())


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_golden(name: str) -> None:
    image = render(name)
    path = GOLDEN / f"{name}.png"
    if os.environ.get("TCS_UPDATE_GOLDEN"):
        image.save(path, optimize=True)
    golden = Image.open(path).convert("L")
    assert golden.size == image.size
    assert differing(image, golden) <= 0.01, f"{name} differs from {path}"


def ink_rows(image: Image.Image) -> np.ndarray:
    return np.nonzero(np.asarray(image.convert("L")).max(axis=1) > 127)[0]


@pytest.mark.parametrize("size", [(128, 32), (640, 360), (1920, 1080)])
def test_stacked_marks_are_drawn_and_never_clipped(size: tuple[int, int]) -> None:
    plain = text_scene("A e U o", Style(), size, TZ, mono=size[1] < 64).frame(0, 0)
    marked = text_scene("Ặ ễ Ữ ỗ", Style(), size, TZ, mono=size[1] < 64).frame(0, 0)
    p, m = ink_rows(plain), ink_rows(marked)
    # Marks above the capitals and the dot below Ặ: ink reaches further both ways.
    assert m.min() < p.min() and m.max() >= p.max()
    # Nothing touches the panel's edges: a mark cut off at the top would.
    assert m.min() > 0 and m.max() < size[1] - 1


def test_64x16_keeps_the_diacritics_that_8px_loses() -> None:
    """16 px is the smallest height where ặ and a differ by their marks (TESTING-NOTES)."""
    a = text_scene("a", Style(), (64, 16), TZ, mono=True).frame(0, 0)
    b = text_scene("ặ", Style(), (64, 16), TZ, mono=True).frame(0, 0)
    assert len(ink_rows(b)) > len(ink_rows(a)) + 2


def test_small_panel_fallback_is_flagged() -> None:
    scene = text_scene(VI, Style(), (32, 8), TZ, mono=True)
    assert "small_panel" in scene.notes and scene.animated  # compact font, marquee


def test_khmer_uses_a_khmer_font_and_shaping() -> None:
    path = fonts.font_file("khmer")
    assert path is not None and path.name.startswith("NotoSansKhmer")
    assert fonts.complex_layout(), "Pillow without raqm draws Khmer clusters wrongly"
    image = render("km_640x120")
    assert len(ink_rows(image)) > 20
