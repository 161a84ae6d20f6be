"""Slides → scenes (pure): a function of the slide spec, the board's size and the time.

PROTOCOL §5.2 slides are `{"text": "…", "style": {…}}` or `{"media": MediaRef}`, each
with `duration_s`. The `style` keys are documented in docs/PROTOCOL-NOTES.md ("Slides");
`parse_style` validates and bounds them. Text is NFC-normalised (a decomposed "ệ" from
a Windows editor otherwise draws its marks as separate, misplaced glyphs).

Layout by panel height:
- under 16 px (small MAX7219 chains): one line in the compact font, as tall as the panel
  with its stacked marks, scrolling when longer than the panel (`notes` "small_panel":
  the owner raises the `display_small_panel` event, see docs/DISPLAY.md);
- under 64 px: one line at the full height, a marquee when it does not fit;
- otherwise: optional header (title left, clock right), the body auto-fitted and wrapped,
  an optional ticker strip at the bottom.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Any, Final, Literal

from PIL import Image, ImageDraw, ImageOps

from display import layout
from display.palette import LEVELS, Canvas, Ink, Palette, Tiles, ramp, rgb, stamp
from display.palette import mask as ink_mask
from display.scene import Clock, Scene, Strip

Align = Literal["left", "center", "right"]
VAlign = Literal["top", "middle", "bottom"]
_COLOUR: Final = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_TEXT: Final = 2000
MAX_LINE: Final = 500
SMALL_PANEL: Final = 16  # below this, the compact one-line fallback
ALERT_RED, ALERT_YELLOW = "#C00000", "#FFD400"
HEADER_MIN: Final = 64  # from this height on, title/clock header and ticker strip


@dataclass(frozen=True, slots=True)
class Style:
    title: str = ""
    color: str = "#FFFFFF"
    background: str = "#000000"
    title_color: str = "#FFD400"
    align: Align = "center"
    valign: VAlign = "middle"
    size: int = 0  # body font px; 0 = auto-fit
    bold: bool = False
    fit: Literal["contain", "cover"] = "contain"
    ticker: str = ""
    clock: bool = False
    speed: float = 0.0  # marquee/ticker px/s; 0 = one panel height per second (min 24)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def parse_style(raw: Any) -> Style:
    """Validate a slide's `style` object; ValueError names the key and what is wrong.

    Unknown keys are ignored (PROTOCOL §4: unknown fields are ignored)."""
    if raw is None:
        return Style()
    if not isinstance(raw, dict):
        raise ValueError("style must be an object")
    out: dict[str, Any] = {}
    for key in ("title", "ticker"):
        if key in raw:
            v = raw[key]
            if not isinstance(v, str) or len(v) > MAX_LINE:
                raise ValueError(f"style.{key} must be a string of at most {MAX_LINE} characters")
            out[key] = nfc(v)
    for key in ("color", "background", "title_color"):
        if key in raw:
            v = raw[key]
            if not isinstance(v, str) or not _COLOUR.match(v):
                raise ValueError(f"style.{key} must be a colour '#RRGGBB', not {v!r}")
            out[key] = v.upper()
    for key, choices in (
        ("align", ("left", "center", "right")),
        ("valign", ("top", "middle", "bottom")),
        ("fit", ("contain", "cover")),
    ):
        if key in raw:
            if raw[key] not in choices:
                raise ValueError(
                    f"style.{key} must be one of {', '.join(choices)}, not {raw[key]!r}"
                )
            out[key] = raw[key]
    for key in ("bold", "clock"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise ValueError(f"style.{key} must be true or false")
            out[key] = raw[key]
    if "size" in raw:
        v = raw["size"]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 1000:
            raise ValueError("style.size must be an integer 0-1000 (0 = auto-fit)")
        out["size"] = v
    if "speed" in raw:
        v = raw["speed"]
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 2000:
            raise ValueError("style.speed must be 0-2000 pixels per second (0 = automatic)")
        out["speed"] = float(v)
    return Style(**out)


def _speed(style: Style, height: int) -> float:
    return style.speed or float(max(24, height))


def _strip(
    text: str,
    face: layout.Face,
    box: tuple[int, int, int, int],
    style: Style,
    mono: bool,
    fg: str,
    palette: Palette,
) -> Strip:
    """Pre-render a scrolling line: text + gap, drawn twice so any crop is seamless."""
    w, h = box[2] - box[0], box[3] - box[1]
    gap = max(w // 3, face.size * 2)
    period = layout.width(text, face) + gap
    coverage, draw = ink_mask((period + w + period, h), mono)
    top, bottom = _extent(text, face)
    baseline = (h - (bottom - top)) // 2 - top
    # Drawn once, then copied along the strip (rasterising it again each time was a
    # quarter of a 1080p slide's render time).
    layout.draw_line(draw, (0, baseline), text, face, 255)
    once = coverage.crop((0, 0, min(period, coverage.width), h))
    x = period
    while x < coverage.width:
        coverage.paste(once, (x, 0))
        x += period
    image = palette.page(coverage.size, style.background)
    stamp(image, coverage, (0, 0), palette.ink(fg, style.background))
    return Strip(palette.finish(image), box, _speed(style, h), period)


def _one_line(
    text: str, size: tuple[int, int], style: Style, mono: bool, compact: bool, palette: Palette
) -> Scene:
    """Short panels: the whole text on one line as tall as the panel; marquee if too long."""
    w, h = size
    line = " ".join(text.split())
    face = layout.size_for_height(h, line, compact=compact, bold=style.bold)
    notes = ("small_panel",) if compact else ()
    canvas = Canvas(palette, size, style.background, mono)
    if layout.width(line, face) <= w:
        top, bottom = _extent(line, face)
        baseline = (h - (bottom - top)) // 2 - top
        x = _x(style.align, layout.width(line, face), 0, w)
        ink = palette.ink(style.color, style.background)

        def paint(d: ImageDraw.ImageDraw, ox: int, oy: int) -> None:
            layout.draw_line(d, (x - ox, baseline - oy), line, face, 255)

        canvas.text((0, 0, w, h), ink, paint)
        return Scene(((0.0, canvas.finish()),), mono=mono, notes=notes)
    strip = _strip(line, face, (0, 0, w, h), style, mono, style.color, palette)
    return Scene(((0.0, canvas.finish()),), (strip,), mono=mono, notes=notes)


def _extent(text: str, face: layout.Face) -> tuple[int, int]:
    # Compact faces are placed by the text's own ink (they may not hold every probe).
    return layout.ink_extent(text, face) if face.compact else layout.line_extent(text, face)


def _x(align: str, line_w: int, left: int, box_w: int) -> int:
    if align == "left":
        return left
    if align == "right":
        return left + box_w - line_w
    return left + (box_w - line_w) // 2


def _body(
    canvas: Canvas, ink: Ink, text: str, box: tuple[int, int, int, int], style: Style
) -> None:
    """The body, auto-fitted and wrapped in `box`, drawn line by line on `canvas`."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if style.size:
        block = layout.fit(
            text, (bw, bh), max_size=style.size, min_size=style.size, bold=style.bold
        )
    else:
        block = layout.fit(
            text, (bw, bh), max_size=max(8, bh // 2), min_size=max(8, bh // 24), bold=style.bold
        )
    lines = list(block.lines)
    step = block.line_h + block.spacing
    if not block.fits:  # too long even at the smallest size: keep what fits, mark the cut
        keep = max(1, (bh + block.spacing) // step)
        if len(lines) > keep:
            lines = lines[:keep]
            lines[-1] = lines[-1].rstrip() + " …"
    total = len(lines) * step - block.spacing
    y = {"top": y0, "middle": y0 + (bh - total) // 2, "bottom": y1 - total}[style.valign]
    # One baseline grid for the block: every line's box is as tall as the tallest.
    block_top = min(layout.line_extent(line, block.face)[0] for line in lines)
    block_bottom = max(layout.line_extent(line, block.face)[1] for line in lines)
    m = max(2, block.face.size // 4)  # ink may overhang a line's box a little: keep it
    for line in lines:
        x = _x(style.align, layout.width(line, block.face), x0, bw)
        base = y - block_top

        def paint(
            d: ImageDraw.ImageDraw, ox: int, oy: int, x: int = x, base: int = base, line: str = line
        ) -> None:
            layout.draw_line(d, (x - ox, base - oy), line, block.face, 255)

        region = (x0 - m, base + block_top - m, x1 + m, base + block_bottom + m)
        canvas.text(region, ink, paint)
        y += step


def text_scene(
    text: str,
    style: Style,
    size: tuple[int, int],
    tz: tzinfo,
    *,
    mono: bool = False,
    palette: Palette | None = None,
) -> Scene:
    """A text slide for a board of `size`; `mono` for 1-bit LED matrices.

    Its pages and strips are 'P' images in `palette` (a new one if None; the emergency
    scene passes one shared with its banner pages), see display/palette.py."""
    palette = palette if palette is not None else Palette()
    text = nfc(text)[:MAX_TEXT]
    w, h = size
    if h < HEADER_MIN:
        full = f"{style.title}: {text}" if style.title else text
        return _one_line(full, size, style, mono, h < SMALL_PANEL, palette)
    pad = max(2, min(w, h) // 40)
    canvas = Canvas(palette, size, style.background, mono)
    top_y = pad
    clock = None
    if style.title or style.clock:
        header_h = max(12, h // 8)
        face = layout.size_for_height(header_h - pad, style.title + "0123456789:", bold=True)
        clock_w = 0
        title_ink = palette.ink(style.title_color, style.background)
        if style.clock:
            clock_w = layout.width("00:00", face) + pad
            clock = Clock(
                (w - pad - clock_w, pad, w - pad, pad + header_h - pad),
                face,
                style.title_color,
                style.background,
                tz,
                title_ink,
            )
        if style.title.strip():
            ext_top, _ = layout.line_extent(style.title, face)
            title = style.title
            while title and layout.width(title, face) > w - 2 * pad - clock_w - pad:
                title = title[:-1]
            canvas.text((0, 0, w, pad + header_h), title_ink, lambda d, ox, oy: layout.draw_line(
                d, (pad - ox, pad - ext_top - oy), title, face, 255
            ))  # fmt: skip
        top_y = pad + header_h
    bottom_y = h - pad
    strips: list[Strip] = []
    if style.ticker:
        ticker_h = max(12, h // 10)
        box = (0, h - ticker_h, w, h)
        face = layout.size_for_height(ticker_h - 2, style.ticker, bold=True)
        ticker_style = Style(
            background="#000000" if style.background != "#000000" else "#202020",
            speed=style.speed or float(max(60, h // 9 * 1)),
        )
        strip = _strip(style.ticker, face, box, ticker_style, mono, style.title_color, palette)
        strips.append(strip)
        canvas.fill(box, ticker_style.background)
        bottom_y = h - ticker_h - pad
    body_ink = palette.ink(style.color, style.background)
    _body(canvas, body_ink, text, (pad, top_y, w - pad, bottom_y), style)
    return Scene(((0.0, canvas.finish()),), tuple(strips), clock, mono=mono)


def image_scene(
    image: Image.Image, style: Style, size: tuple[int, int], *, mono: bool = False
) -> Scene:
    """An image slide: `contain` letterboxes in the background colour, `cover` fills and crops."""
    src = ImageOps.exif_transpose(image).convert("RGB")
    if style.fit == "cover":
        page = ImageOps.fit(src, size, Image.Resampling.LANCZOS)
    else:
        page = Image.new("RGB", size, style.background)
        fitted = ImageOps.contain(src, size, Image.Resampling.LANCZOS)
        page.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return Scene(((0.0, page),), mono=mono)


BANNER_ENTRIES: Final = 1 + LEVELS  # the alert palette's first entries: the banner's


def _alert_palette() -> Palette:
    """The emergency scene's palette, built in a fixed order so that the cached banner
    page and each alert's text page, strip and clock index the same colours. Its first
    `BANNER_ENTRIES` are the banner's own (background, then the word's ramp), filled
    per colouring by `_banner`."""
    palette = Palette()
    palette.reserve(BANNER_ENTRIES)
    palette.ink(ALERT_YELLOW, ALERT_RED)  # title and clock
    palette.ink("#FFFFFF", ALERT_RED)  # text
    palette.ink(ALERT_YELLOW, "#000000")  # ticker
    palette.solid("#000000")
    return palette


@lru_cache(maxsize=4)
def _banner(word: str, size: tuple[int, int], mono: bool) -> tuple[Tiles, tuple[
    tuple[int, ...], tuple[int, ...]
]]:
    """The flashing banner: one page (the word) in two colourings, yellow on red and red
    on yellow, as palettes of the alert palette. The same for every alert on a board, so
    rendered once (an alert's first frame is then on the board sooner), and held once
    (tiles of about 1 MB at 1080p): the colourings differ only in the banner's entries."""
    red, yellow = rgb(ALERT_RED), rgb(ALERT_YELLOW)
    alone = Palette()
    scene = text_scene(word, Style(color=ALERT_YELLOW, background=ALERT_RED, bold=True),
                       size, UTC, mono=mono, palette=alone)  # fmt: skip
    tiles = scene.pages[0][1]
    assert isinstance(tiles, Tiles)
    # Into the reserved entries: the background to 0, the word's ramp to 1..LEVELS.
    lut = list(range(256))
    lut[alone.solid(ALERT_RED)] = 0
    ink = alone.ink(ALERT_YELLOW, ALERT_RED)
    for k in range(LEVELS):
        lut[ink.lut[0] + k] = 1 + k
    page = tiles.remap(lut, tuple(_alert_palette().flat()))
    colourings = []
    for fg, bg in ((yellow, red), (red, yellow)):
        entries = dict(enumerate([bg, *ramp(fg, bg)]))
        colourings.append(tuple(_alert_palette().flat(entries)))
    return page, (colourings[0], colourings[1])


EMERGENCY_WORD: Final[dict[str, str]] = {"vi": "KHẨN CẤP", "km": "បន្ទាន់", "en": "EMERGENCY"}


def emergency_scene(
    text: str,
    size: tuple[int, int],
    tz: tzinfo,
    wall: float,
    *,
    lang: str = "vi",
    mono: bool = False,
    text_s: float = 8.0,
) -> Scene:
    """The alert takeover: a flashing banner (3 s), then the text (or, for a media-only
    alert, the standard card with the time), repeated; the ticker carries the headline."""
    from datetime import datetime

    word = EMERGENCY_WORD.get(lang.split("-")[0], EMERGENCY_WORD["vi"])
    body = nfc(text).strip() or f"{word} {datetime.fromtimestamp(wall, tz).strftime('%H:%M')}"
    headline = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
    red, yellow = ALERT_RED, ALERT_YELLOW
    flash, colourings = _banner(word, size, mono)
    ticker = headline if size[1] >= HEADER_MIN else ""
    main = text_scene(
        body,
        Style(
            color="#FFFFFF",
            background=red,
            title=word if size[1] >= HEADER_MIN else "",
            title_color=yellow,
            ticker=ticker,
            clock=size[1] >= HEADER_MIN,
        ),
        size,
        tz,
        mono=mono,
        palette=_alert_palette(),
    )
    pages: list[tuple[float, Image.Image | Tiles]] = []
    palettes: list[tuple[int, ...] | None] = []
    for _ in range(3):
        pages += [(0.5, flash), (0.5, flash)]
        palettes += colourings
    pages.append((text_s, main.pages[0][1]))
    palettes.append(None)
    # The text part animates (ticker, clock) at 64 px and taller; below, the marquee.
    return Scene(tuple(pages), main.strips, main.clock, mono=mono, notes=main.notes,
                 palettes=tuple(palettes))  # fmt: skip


def test_pattern(size: tuple[int, int]) -> Image.Image:
    """Colour bars with a 1-px white border and a diagonal: every pixel, colour and edge."""
    w, h = size
    bars = ("#FFFFFF", "#FFFF00", "#00FFFF", "#00FF00", "#FF00FF", "#FF0000", "#0000FF", "#000000")
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for i, colour in enumerate(bars):
        draw.rectangle((i * w // 8, 0, (i + 1) * w // 8 - 1, h - 1), fill=colour)
    draw.rectangle((0, 0, w - 1, h - 1), outline="#FFFFFF")
    draw.line((0, 0, w - 1, h - 1), fill="#FFFFFF")
    return image
