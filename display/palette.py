"""Slide pages as palette images: one byte a pixel instead of Pillow's four for RGB.

A 1920×1080 RGB page is 8.3 MB in Pillow (it stores RGB as 32-bit pixels); an alert
holds five such pages, which is what kept a 1080p agent far above its 80 MB budget.
A text slide has only a handful of colour pairs (body on background, title on
background, the ticker's line on its strip), so its pages are 'P' images whose palette
holds, for each pair, a ramp of `LEVELS` blends from the background to the ink.

Text is rasterised into an 'L' coverage mask (what FreeType's anti-aliasing gives,
0-255) and the mask is mapped through the pair's ramp (`Ink.lut`). A blend is then
within 255 / (2·(LEVELS-1)) ≈ 2 of what drawing in RGB gives, per channel: the eye
cannot tell, the golden images do not move. A 1-bit board's masks are 0 or 255, exact.

Everything of one scene (its pages, ticker strip, clock) shares one `Palette`. A text
page is kept as `Tiles`, its background and the inked box of each line (drawn on a
`Canvas`, line by line), not as a page-sized image; a frame is composed from them by
pasting indices (a 2 MB 'P' image at 1080p, in about a millisecond) and a board
converts it to its own pixels in bands of rows (display/frames.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from PIL import Image, ImageColor, ImageDraw

LEVELS: Final = 60  # blends per colour pair: four pairs fit a 256-entry palette
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Ink:
    """A colour over a background, as palette indices: `lut[coverage]`."""

    lut: tuple[int, ...]  # 256 entries: coverage 0 (the background) .. 255 (the ink)

    @property
    def background(self) -> int:
        return self.lut[0]


def rgb(colour: str | RGB) -> RGB:
    if isinstance(colour, tuple):
        return colour
    r, g, b = ImageColor.getrgb(colour)[:3]
    return r, g, b


@lru_cache(maxsize=64)
def _ramp(fg: RGB, bg: RGB) -> tuple[RGB, ...]:
    out = []
    for k in range(LEVELS):
        a = k / (LEVELS - 1)
        out.append(
            (
                round(bg[0] + (fg[0] - bg[0]) * a),
                round(bg[1] + (fg[1] - bg[1]) * a),
                round(bg[2] + (fg[2] - bg[2]) * a),
            )
        )
    return tuple(out)


def ramp(fg: RGB, bg: RGB) -> list[RGB]:
    """`LEVELS` blends from `bg` (index 0) to `fg`."""
    return list(_ramp(fg, bg))


@lru_cache(maxsize=256)
def _lut(base: int) -> tuple[int, ...]:
    """Coverage 0-255 → the index of the nearest of `LEVELS` blends from `base` on."""
    return tuple(base + (c * (LEVELS - 1) + 127) // 255 for c in range(256))


@dataclass
class Palette:
    """Up to 256 colours: solid ones and ramps, each allocated once (asking again for
    the same pair returns the same indices, so pages built apart can share strips)."""

    entries: list[RGB] = field(default_factory=list)
    _inks: dict[tuple[RGB, RGB], Ink] = field(default_factory=dict)
    _solids: dict[RGB, int] = field(default_factory=dict)

    def solid(self, colour: str | RGB) -> int:
        c = rgb(colour)
        if c not in self._solids:
            self._take(1)
            self._solids[c] = len(self.entries)
            self.entries.append(c)
        return self._solids[c]

    def ink(self, fg: str | RGB, bg: str | RGB) -> Ink:
        f, b = rgb(fg), rgb(bg)
        if (f, b) not in self._inks:
            if f == b:
                index = self.solid(b)
                self._inks[(f, b)] = Ink((index,) * 256)
            else:
                self._take(LEVELS)
                base = len(self.entries)
                self.entries += ramp(f, b)
                self._inks[(f, b)] = Ink(_lut(base))
        return self._inks[(f, b)]

    def reserve(self, n: int) -> int:
        """`n` entries of this palette's own (black until `flat(overrides=)` fills them),
        never shared with an `ink` or `solid`; returns the first index."""
        self._take(n)
        base = len(self.entries)
        self.entries += [(0, 0, 0)] * n
        return base

    def _take(self, n: int) -> None:
        if len(self.entries) + n > 256:
            raise ValueError("a slide uses more colour pairs than a 256-colour palette holds")

    def flat(self, overrides: dict[int, RGB] | None = None) -> list[int]:
        """The palette as Pillow wants it (768 values), with `overrides` {index: colour}."""
        entries = list(self.entries)
        for i, c in (overrides or {}).items():
            entries[i] = c
        out = [v for c in entries for v in c]
        return out + [0] * (768 - len(out))

    def page(self, size: tuple[int, int], background: str | RGB) -> Image.Image:
        """A 'P' page of `size` filled with `background`, using this palette."""
        image = Image.new("P", size, self.solid(background))
        image.putpalette(self.flat())
        return image

    def finish(self, image: Image.Image) -> Image.Image:
        """Give `image` ('P') the palette as it is now (inks added after `page`)."""
        image.putpalette(self.flat())
        return image


def mask(size: tuple[int, int], mono: bool) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """An empty coverage mask to draw text on with fill=255 (fontmode "1" when mono)."""
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    if mono:
        draw.fontmode = "1"
    return image, draw


def stamp(page: Image.Image, coverage: Image.Image, xy: tuple[int, int], ink: Ink) -> None:
    """Paste `coverage` (an 'L' mask drawn on a background-only area) at `xy` in `ink`.

    The whole box of the mask is replaced (background where it has no ink)."""
    page.paste(_indices(coverage, ink), xy)


def _indices(coverage: Image.Image, ink: Ink) -> Image.Image:
    indices = coverage.point(list(ink.lut))
    indices.putpalette(_ANY)  # 'P' into 'P' copies the indices as they are
    return indices


_ANY: Final = [0] * 768
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Tiles:
    """A 'P' page kept as its background and the boxes that hold ink: most of a text
    page is background (a 1080p idle card is 2 MB as an image, 30 kB as tiles)."""

    size: tuple[int, int]
    background: int
    palette: tuple[int, ...]
    tiles: tuple[tuple[tuple[int, int], Image.Image], ...]

    def image(self, palette: tuple[int, ...] | None = None) -> Image.Image:
        """The page as a 'P' image (in `palette` instead of its own if given)."""
        out = Image.new("P", self.size, self.background)
        out.putpalette(list(palette or self.palette))
        for xy, tile in self.tiles:
            out.paste(tile, xy)
        return out

    def remap(self, lut: list[int], palette: tuple[int, ...]) -> Tiles:
        """The same page with each index `i` replaced by `lut[i]`, in `palette`."""
        tiles = []
        for xy, tile in self.tiles:
            mapped = tile.point(lut)
            mapped.putpalette(_ANY)
            tiles.append((xy, mapped))
        return Tiles(self.size, lut[self.background], palette, tuple(tiles))


class Canvas:
    """A page being drawn: the background, solid boxes and text, as `Tiles`.

    Text is drawn line by line on a mask just larger than the line and kept only as
    its inked box, so neither a page-sized mask nor a page-sized image is ever made."""

    def __init__(self, palette: Palette, size: tuple[int, int], background: str, mono: bool):
        self.palette = palette
        self.size = size
        self.mono = mono
        self.background = palette.solid(background)
        self._tiles: list[tuple[Box, Image.Image]] = []

    def fill(self, box: Box, colour: str) -> None:
        tile = Image.new("P", (box[2] - box[0], box[3] - box[1]), self.palette.solid(colour))
        tile.putpalette(_ANY)
        self._add(box, tile)

    def text(
        self,
        region: Box,
        ink: Ink,
        paint: Callable[[ImageDraw.ImageDraw, int, int], None],
    ) -> None:
        """Let `paint(draw, ox, oy)` draw coverage (fill 255) at page coordinates minus
        (ox, oy) on a mask covering `region` (clipped to the page); keep its ink."""
        w, h = self.size
        x0, y0 = max(0, region[0]), max(0, region[1])
        x1, y1 = min(w, region[2]), min(h, region[3])
        if x1 <= x0 or y1 <= y0:
            return
        coverage, draw = mask((x1 - x0, y1 - y0), self.mono)
        paint(draw, x0, y0)
        bbox = coverage.getbbox()
        if bbox is None:
            return
        lut = list(ink.lut)
        lut[0] = self.background  # no ink: the page's own background index
        tile = coverage.crop(bbox).point(lut)
        tile.putpalette(_ANY)
        self._add((x0 + bbox[0], y0 + bbox[1], x0 + bbox[2], y0 + bbox[3]), tile)

    def _add(self, box: Box, tile: Image.Image) -> None:
        for i, (other, old) in enumerate(self._tiles):
            if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                # Overlapping boxes (a mark reaching into the next line's box): one tile
                # of both, the new one pasted only where it is not background.
                union = (
                    min(box[0], other[0]), min(box[1], other[1]),
                    max(box[2], other[2]), max(box[3], other[3]),
                )  # fmt: skip
                merged = Image.new("P", (union[2] - union[0], union[3] - union[1]), self.background)
                merged.putpalette(_ANY)
                merged.paste(old, (other[0] - union[0], other[1] - union[1]))
                opaque = [0 if v == self.background else 255 for v in range(256)]
                where = Image.frombytes("L", tile.size, tile.tobytes()).point(opaque)
                merged.paste(tile, (box[0] - union[0], box[1] - union[1]), where)
                del self._tiles[i]
                self._add(union, merged)
                return
        self._tiles.append((box, tile))

    def finish(self) -> Tiles:
        tiles = tuple(((b[0], b[1]), t) for b, t in self._tiles)
        return Tiles(self.size, self.background, tuple(self.palette.flat()), tiles)
