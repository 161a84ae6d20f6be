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

Everything of one scene (its pages, ticker strip, clock) shares one `Palette`, so a
frame is composed by pasting indices (a 'P' copy, a quarter of the RGB one) and a
board converts it to its own pixels in bands of rows (display/frames.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


def ramp(fg: RGB, bg: RGB) -> list[RGB]:
    """`LEVELS` blends from `bg` (index 0) to `fg`."""
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
    return out


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
                lut = tuple(base + (c * (LEVELS - 1) + 127) // 255 for c in range(256))
                self._inks[(f, b)] = Ink(lut)
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


def stamp(
    page: Image.Image, coverage: Image.Image, xy: tuple[int, int], ink: Ink
) -> None:
    """Paste `coverage` (an 'L' mask drawn on a background-only area) at `xy` in `ink`.

    The area under the mask's box becomes background or ink: callers give each text its
    own box on a plain background (title, body, ticker and clock never overlap)."""
    indices = coverage.point(list(ink.lut))
    indices.putpalette(_ANY)  # 'P' into 'P' copies the indices as they are
    page.paste(indices, xy)


_ANY: Final = [0] * 768
