"""A scene: what a board shows for one slide, as a function of time (pure).

Everything expensive (layout, font rasterising, image scaling) happens once when the
slide is prepared; a frame is then at most a copy of the prepared page plus a crop of a
pre-rendered strip (marquee, ticker) and the clock, so a 1080p ticker runs at 30 fps on
a Pi and the presenter can show a new slide on its planned frame. Text slides' pages,
strips and frames are 'P' images in one palette per scene (display/palette.py): a
1080p frame is 2 MB, not Pillow's 8 MB for RGB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Protocol

from PIL import Image, ImageDraw

from display import layout
from display.palette import Ink, Tiles, mask, stamp


@dataclass(frozen=True)
class Strip:
    """A line that scrolls right-to-left through `box` at `speed` px/s, looping."""

    image: Image.Image  # the line drawn at x=0 and again at x=period (seamless loop)
    box: tuple[int, int, int, int]
    speed: float
    period: int

    def crop(self, elapsed: float) -> Image.Image:
        x = int(elapsed * self.speed) % self.period if self.period else 0
        w = self.box[2] - self.box[0]
        return self.image.crop((x, 0, x + w, self.image.height))


@dataclass(frozen=True)
class Clock:
    """HH:MM in local time, right-aligned in `box`."""

    box: tuple[int, int, int, int]
    face: layout.Face
    fg: str
    bg: str
    tz: tzinfo
    ink: Ink | None = None  # fg over bg in the scene's palette, for 'P' frames

    def text(self, wall: float) -> str:
        return datetime.fromtimestamp(wall, self.tz).strftime("%H:%M")

    def draw(self, image: Image.Image, wall: float, mono: bool) -> None:
        if image.mode == "P" and self.ink is not None:
            self._draw_indices(image, wall, mono, self.ink)
            return
        draw = ImageDraw.Draw(image)
        if mono:
            draw.fontmode = "1"
        x0, y0, x1, y1 = self.box
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=self.bg)
        text = self.text(wall)
        top, bottom = layout.line_extent(text, self.face)
        baseline = y0 + ((y1 - y0) - (bottom - top)) // 2 - top
        layout.draw_line(
            draw, (x1 - layout.width(text, self.face), baseline), text, self.face, self.fg
        )


    def _draw_indices(self, image: Image.Image, wall: float, mono: bool, ink: Ink) -> None:
        x0, y0, x1, y1 = self.box
        coverage, draw = mask((x1 - x0, y1 - y0), mono)
        text = self.text(wall)
        top, bottom = layout.line_extent(text, self.face)
        baseline = ((y1 - y0) - (bottom - top)) // 2 - top
        x = x1 - x0 - layout.width(text, self.face)
        layout.draw_line(draw, (x, baseline), text, self.face, 255)
        stamp(image, coverage, (x0, y0), ink)


class SceneLike(Protocol):
    """What the presenter needs from a scene (a slide, or a video in display/video.py)."""

    @property
    def clock(self) -> Clock | None: ...

    @property
    def animated(self) -> bool: ...

    @property
    def size(self) -> tuple[int, int]: ...

    def frame(self, elapsed: float, wall: float) -> Image.Image: ...

    def changing_rows(self) -> tuple[int, int] | None: ...

    def begin(self) -> None:
        """Its first frame is on the board (a video starts its decoder's clock)."""

    def close(self) -> None:
        """It is no longer shown (a video's decoder process ends)."""


@dataclass(frozen=True)
class Scene:
    """Pages shown in turn (a static slide has one), plus strips and a clock on top."""

    pages: tuple[tuple[float, Image.Image | Tiles], ...]  # text pages are Tiles
    strips: tuple[Strip, ...] = ()
    clock: Clock | None = None
    mono: bool = False
    notes: tuple[str, ...] = field(default=())  # e.g. "small_panel": fallback used
    # Per page, a palette to show a 'P' page in instead of its own (None: its own); the
    # flashing banner is one page in two colourings, so it is held once.
    palettes: tuple[tuple[int, ...] | None, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        return self.pages[0][1].size

    @property
    def animated(self) -> bool:
        """Whether frames change more often than once a minute (marquee, ticker, flash)."""
        return bool(self.strips) or len(self.pages) > 1

    @property
    def prerender(self) -> bool:
        """Whether the presenter should render the first frame when the scene is cued
        rather than when it is due: not for tiled text pages, composed in a few ms."""
        return not all(isinstance(page, Tiles) for _, page in self.pages)

    def _at(self, elapsed: float) -> int:
        """Index of the page shown `elapsed` seconds in."""
        if len(self.pages) == 1:
            return 0
        total = sum(d for d, _ in self.pages)
        t = elapsed % total
        for i, (duration, _) in enumerate(self.pages):
            if t < duration:
                return i
            t -= duration
        return len(self.pages) - 1

    def page(self, elapsed: float) -> Image.Image | Tiles:
        return self.pages[self._at(elapsed)][1]

    def frame(self, elapsed: float, wall: float) -> Image.Image:
        """The frame `elapsed` seconds into the scene, at wall time `wall` (for the clock)."""
        i = self._at(elapsed)
        base = self.pages[i][1]
        palette = self.palettes[i] if self.palettes else None
        if isinstance(base, Tiles):
            image = base.image(palette)  # a new image: strips and clock go on it
        elif not self.strips and self.clock is None and palette is None:
            return base
        else:
            image = base.copy()
            if palette is not None:
                image.putpalette(palette)
        for strip in self.strips:
            image.paste(strip.crop(elapsed), strip.box[:2])
        if self.clock is not None:
            self.clock.draw(image, wall, self.mono)
        return image

    def changing_rows(self) -> tuple[int, int] | None:
        """Rows that change from frame to frame when only the strips move (a partial
        framebuffer write), or None when anything else may change."""
        if len(self.pages) > 1 or not self.strips:
            return None
        top = min(s.box[1] for s in self.strips)
        bottom = max(s.box[3] for s in self.strips)
        return top, bottom

    def begin(self) -> None:
        return None

    def close(self) -> None:
        return None
