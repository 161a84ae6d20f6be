"""Fonts that can draw what the province sends: Vietnamese with every stacked diacritic,
and the minority scripts Noto covers (Khmer, Thai, Lao, Cham).

luma's built-in bitmap fonts cannot draw Vietnamese at all, so they are never used.
Latin/Vietnamese text uses Noto Sans (DejaVu Sans if Noto is missing; both cover every
Vietnamese letter, DejaVu Sans *Mono* does not); each other script uses its Noto
family from Debian's fonts-noto-core. Complex scripts (Khmer subscripts, vowel
reordering) need Pillow's raqm layout (HarfBuzz); without it Pillow's basic layout
draws the code points in logical order, which is wrong for Khmer, so `complex_layout()`
is reported in the display event at start (docs/DISPLAY.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Final

from PIL import ImageFont, features

FONT_DIRS: Final = (
    Path("/usr/share/fonts/truetype/noto"),
    Path("/usr/share/fonts/truetype/dejavu"),
)

# script -> candidate (regular, bold) files, best first.
SCRIPT_FONTS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "latin": (
        ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
        ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ),
    "khmer": (("NotoSansKhmer-Regular.ttf", "NotoSansKhmer-Bold.ttf"),),
    "thai": (("NotoSansThai-Regular.ttf", "NotoSansThai-Bold.ttf"),),
    "lao": (("NotoSansLao-Regular.ttf", "NotoSansLao-Bold.ttf"),),
    "cham": (("NotoSansCham-Regular.ttf", "NotoSansCham-Bold.ttf"),),
}
# Small LED panels: DejaVu Sans is hinted for the pixel grid, so its diacritics stay
# apart at sizes where Noto's blur into the letter.
COMPACT_FONTS: Final = (("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),)

_RANGES: Final = (
    (0x1780, 0x17FF, "khmer"),
    (0x19E0, 0x19FF, "khmer"),
    (0x0E00, 0x0E7F, "thai"),
    (0x0E80, 0x0EFF, "lao"),
    (0xAA00, 0xAA5F, "cham"),
)
_COMPLEX: Final = re.compile(
    "[" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi, _ in _RANGES) + "]"
)
# Ink probes per script: the tallest and deepest glyphs, so line height always holds
# stacked marks (Ặ above, ặ's dot below; Khmer subscript consonants).
PROBES: Final[dict[str, str]] = {
    "latin": "ẶỖỮặỹgjÁ",
    "khmer": "ស្ត្រីក្សេ",
    "thai": "ปั้ญญู",
    "lao": "ປັ້ຍູ",
    "cham": "ꨀꨁꨩ",
}


def script_of(ch: str) -> str | None:
    """The script a character belongs to, or None for neutral ones (space, digits,
    punctuation, combining marks) that take the script of their neighbours."""
    cp = ord(ch)
    for lo, hi, name in _RANGES:
        if lo <= cp <= hi:
            return name
    if unicodedata.category(ch)[0] in "LS" and not (0x0300 <= cp <= 0x036F):
        return "latin"
    return None


def latin_only(text: str) -> bool:
    """Whether `text` holds no character of another script (its runs are all Latin)."""
    return not _COMPLEX.search(text)


def runs(text: str) -> Iterator[tuple[str, str]]:
    """Split `text` into (script, text) runs; neutral characters join the run before them."""
    if not _COMPLEX.search(text):  # fast path: Latin/Vietnamese only
        if text:
            yield "latin", text
        return
    current: str | None = None
    buf: list[str] = []
    for ch in text:
        s = script_of(ch)
        if s is not None and current is not None and s != current and buf:
            yield current, "".join(buf)
            buf = []
        if s is not None:
            current = s
        buf.append(ch)
    if buf:
        yield current or "latin", "".join(buf)


def complex_layout() -> bool:
    """Whether Pillow shapes complex scripts (raqm with HarfBuzz/FriBiDi)."""
    return bool(features.check("raqm"))


@lru_cache(maxsize=16)
def font_file(script: str, bold: bool = False, compact: bool = False) -> Path | None:
    candidates = COMPACT_FONTS if compact and script == "latin" else SCRIPT_FONTS.get(script, ())
    for regular, heavy in (*candidates, *SCRIPT_FONTS["latin"]):
        for folder in FONT_DIRS:
            path = folder / (heavy if bold else regular)
            if path.is_file():
                return path
    return None


# Each open face maps its font file anew and touches ~0.3 MB of it (measured with Noto
# Sans at 40-240 px): 37 faces after one 1080p alert were 15 MB of the agent's RSS.
# A slide draws with three or four faces; the auto-fit's probes at other sizes are
# measured once (`layout.width` and `layout._extent` cache the figures, not the faces)
# and their faces evicted. Reopening one costs under a millisecond.
FACES: Final = 6


@lru_cache(maxsize=FACES)
def font(
    script: str, size: int, bold: bool = False, compact: bool = False
) -> ImageFont.FreeTypeFont:
    """A TrueType font for `script` at `size` px; FileNotFoundError names the package."""
    path = font_file(script, bold, compact)
    if path is None:
        raise FileNotFoundError(
            "no Vietnamese-capable font found: install fonts-noto-core or fonts-dejavu-core"
        )
    engine = ImageFont.Layout.RAQM if complex_layout() else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=engine)


def has_script(script: str) -> bool:
    """Whether the script's own font is installed (else Latin glyphs stand in: tofu)."""
    return any((d / c[0]).is_file() for c in SCRIPT_FONTS.get(script, ()) for d in FONT_DIRS)
