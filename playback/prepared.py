"""Decoded audio ready to play: a sequence of raw PCM files and silences.

The PCM files are raw little-endian 16-bit at the engine's rate and channel count
(written by `playback.decode`), read by the player through a memory map so that a
30-minute programme never has to fit in a Pi Zero's RAM. A silence is just a frame
count, so alert gaps cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BYTES_PER_SAMPLE = 2


@dataclass(frozen=True)
class Segment:
    """One piece of a Prepared: a PCM file (`path`) or, when `path` is None, silence."""

    frames: int
    path: Path | None = None

    def to_wire(self) -> list[Any]:
        return [self.frames, None if self.path is None else str(self.path)]


@dataclass(frozen=True)
class Prepared:
    """Audio decoded ahead of its deadline; pass it to `AudioEngine.play`."""

    segments: tuple[Segment, ...]
    sample_rate: int
    channels: int
    sha256s: tuple[str, ...] = ()

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    @property
    def files(self) -> tuple[Path, ...]:
        """The PCM files it reads (kept from eviction while it is prepared or playing)."""
        return tuple(s.path for s in self.segments if s.path is not None)

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @classmethod
    def from_pcm(
        cls, paths: Sequence[Path], *, sample_rate: int, channels: int, sha256s: Sequence[str] = ()
    ) -> Prepared:
        """Wrap raw s16le PCM files (frame count from the file size)."""
        segs = []
        for p in paths:
            size = p.stat().st_size
            frame_bytes = BYTES_PER_SAMPLE * channels
            if size % frame_bytes:
                raise ValueError(f"{p}: size {size} is not a whole number of {channels}-ch frames")
            segs.append(Segment(size // frame_bytes, p))
        return cls(tuple(segs), sample_rate, channels, tuple(sha256s))

    def silence(self, seconds: float) -> Prepared:
        """A silence of `seconds` in this Prepared's format."""
        if seconds < 0:
            raise ValueError(f"silence of {seconds} s")
        seg = Segment(round(seconds * self.sample_rate))
        return Prepared((seg,), self.sample_rate, self.channels)

    def then(self, *others: Prepared) -> Prepared:
        """This followed by `others`, gaplessly (formats must match)."""
        segs = list(self.segments)
        shas = list(self.sha256s)
        for o in others:
            if (o.sample_rate, o.channels) != (self.sample_rate, self.channels):
                raise ValueError(
                    f"cannot join {o.sample_rate} Hz/{o.channels} ch to "
                    f"{self.sample_rate} Hz/{self.channels} ch"
                )
            segs.extend(o.segments)
            shas.extend(s for s in o.sha256s if s not in shas)
        return Prepared(tuple(segs), self.sample_rate, self.channels, tuple(shas))
