"""Text layout for slides (pure): mixed-script runs, wrapping, auto-fit and drawing.

Every line is measured as a sequence of script runs, each in its own font (Vietnamese
in Noto Sans, Khmer in Noto Sans Khmer, ...), so a bilingual line draws correctly.
Line height is the ink height of each script's tallest and deepest glyphs at that size
(`fonts.PROBES`), not the font's nominal ascent, so stacked marks such as Ặ or Ữ are
never clipped at the top of a line or a panel.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageDraw

from display import fonts

_NO_BREAK_AFTER = "\u17d2"  # Khmer COENG: joins the next consonant as a subscript


@dataclass(frozen=True, slots=True)
class Face:
    size: int
    bold: bool = False
    compact: bool = False


@lru_cache(maxsize=1024)
def _extent(script: str, face: Face) -> tuple[int, int]:
    """(top, bottom) of the script's probe ink relative to the baseline (top < 0)."""
    f = fonts.font(script, face.size, face.bold, face.compact)
    _, top, _, bottom = f.getbbox(fonts.PROBES.get(script, fonts.PROBES["latin"]), anchor="ls")
    latin = fonts.font("latin", face.size, face.bold, face.compact)
    _, ltop, _, lbottom = latin.getbbox(fonts.PROBES["latin"], anchor="ls")
    return int(min(top, ltop)), int(max(bottom, lbottom))


def line_extent(text: str, face: Face) -> tuple[int, int]:
    """(top, bottom) ink bounds around the baseline for a line of `text`."""
    if fonts.latin_only(text):  # Vietnamese: no need to split the line into runs
        return _extent("latin", face)
    scripts = {s for s, _ in fonts.runs(text)} or {"latin"}
    tops, bottoms = zip(*(_extent(s, face) for s in sorted(scripts)), strict=True)
    return min(tops), max(bottoms)


def line_height(text: str, face: Face) -> int:
    top, bottom = line_extent(text, face)
    return bottom - top


@lru_cache(maxsize=8192)
def width(text: str, face: Face) -> int:
    total = 0.0
    for script, run in fonts.runs(text):
        total += fonts.font(script, face.size, face.bold, face.compact).getlength(run)
    return round(total)


def draw_line(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, face: Face, fill: object
) -> None:
    """Draw `text` with its left end at x and its baseline at y."""
    x, y = xy
    for script, run in fonts.runs(text):
        f = fonts.font(script, face.size, face.bold, face.compact)
        draw.text((x, y), run, font=f, fill=fill, anchor="ls")  # type: ignore[arg-type]
        x += f.getlength(run)


def _breakable(text: str) -> list[str]:
    """Pieces a too-long word may be split into: never before a combining mark or after
    a Khmer COENG (which would tear a cluster apart)."""
    pieces: list[str] = []
    for ch in text:
        joins = unicodedata.category(ch).startswith("M") or (
            pieces and pieces[-1].endswith(_NO_BREAK_AFTER)
        )
        if pieces and joins:
            pieces[-1] += ch
        else:
            pieces.append(ch)
    return pieces


def wrap(text: str, face: Face, max_width: int) -> list[str]:
    """Greedy word wrap; explicit newlines kept; words wider than a line are split.

    A line's width is the sum of its words' and spaces' widths (cached per word), not
    re-measured for each candidate: linear rather than quadratic in the words, and
    kerning across a space is nil in these fonts."""
    space = width(" ", face)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        words = paragraph.replace("\u200b", " ").split()
        if not words:
            lines.append("")
            continue
        line, line_w = "", 0
        for word in words:
            word_w = width(word, face)
            if line and line_w + space + word_w <= max_width:
                line, line_w = f"{line} {word}", line_w + space + word_w
                continue
            if not line and word_w <= max_width:
                line, line_w = word, word_w
                continue
            if line:
                lines.append(line)
            if word_w <= max_width:
                line, line_w = word, word_w
                continue
            line = ""
            for piece in _breakable(word):
                if line and width(line + piece, face) > max_width:
                    lines.append(line)
                    line = ""
                line += piece
            line_w = width(line, face)
        lines.append(line)
    return lines


@dataclass(frozen=True, slots=True)
class Block:
    lines: tuple[str, ...]
    face: Face
    line_h: int
    spacing: int
    fits: bool

    @property
    def height(self) -> int:
        n = len(self.lines)
        return n * self.line_h + max(0, n - 1) * self.spacing


def _block(text: str, face: Face, box: tuple[int, int]) -> Block:
    lines = wrap(text, face, box[0])
    line_h = max(line_height(line, face) for line in lines) if lines else line_height("", face)
    spacing = max(1, face.size // 6) if box[1] >= 32 else 0
    block = Block(tuple(lines), face, line_h, spacing, True)
    fits = block.height <= box[1] and all(width(line, face) <= box[0] for line in lines)
    return Block(block.lines, face, line_h, spacing, fits)


def fit(
    text: str, box: tuple[int, int], *, max_size: int, min_size: int, bold: bool = False
) -> Block:
    """The largest size in [min_size, max_size] at which `text`, wrapped, fits `box`.

    At `min_size` the block may still not fit (`fits` False): the caller truncates or
    scrolls. Binary search: ~8 layouts for a 1080p slide.
    """
    lo, hi = min_size, max(min_size, max_size)
    best = _block(text, Face(lo, bold), box)
    if not best.fits:
        return best
    while lo < hi:
        mid = (lo + hi + 1) // 2
        candidate = _block(text, Face(mid, bold), box)
        if candidate.fits:
            best, lo = candidate, mid
        else:
            hi = mid - 1
    return best


def ink_extent(text: str, face: Face) -> tuple[int, int]:
    """(top, bottom) of the ink of `text` itself around the baseline."""
    tops, bottoms = [0], [0]
    for script, run in fonts.runs(text):
        f = fonts.font(script, face.size, face.bold, face.compact)
        _, top, _, bottom = f.getbbox(run, anchor="ls")
        tops.append(int(top))
        bottoms.append(int(bottom))
    return min(tops), max(bottoms)


COMPACT_MIN_SIZE = 7  # DejaVu Sans below 7 px loses the letters, not just the marks


def size_for_height(
    height: int, text: str = "", *, compact: bool = False, bold: bool = False
) -> Face:
    """The largest face whose ink (with stacked marks) fits in `height` pixels.

    Compact (panels under 16 px): measured on the text itself rather than the probes,
    and never below COMPACT_MIN_SIZE, where the letters stay readable and the tallest
    stacked marks may lose a row (docs/DISPLAY.md, small panels)."""
    floor = COMPACT_MIN_SIZE if compact else 4

    def fits(size: int) -> bool:
        face = Face(size, bold, compact)
        top, bottom = ink_extent(text, face) if compact else line_extent(text, face)
        return bottom - top <= height

    # Ink height grows with the size: binary search (a 1080p header in ~8 layouts).
    lo, hi = floor, max(floor, height * 2)
    if not fits(lo):
        return Face(floor, bold, compact)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return Face(lo, bold, compact)
