"""The sample-exact mixer run inside the audio callback (pure: no clock, no I/O).

`Mixer.render(out, dac_wall)` fills one output buffer whose first frame reaches the
DAC at wall time `dac_wall` and returns what happened (voice started / ended) with
wall times computed from sample positions, not from when anything was called. A voice
scheduled for wall time T starts at frame round((T - dac_wall) * rate) of the buffer
that contains T. Starting a voice pre-empts the one playing: the old one plays up to
the new one's first frame, then fades out over `fade_frames` (a few ms, no click).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Outcome = Literal["completed", "preempted", "cancelled"]
PcmSource = npt.NDArray[np.int16] | None  # None = silence
F32 = npt.NDArray[np.float32]


@dataclass
class MixVoice:
    """A voice as the mixer sees it; segments are (frames, int16 array or None)."""

    id: int
    segments: Sequence[tuple[int, PcmSource]]
    gain: float
    use_master: bool
    at_wall: float | None
    offset_frames: int = 0
    # Mixer state below.
    pos: int = 0  # frames consumed, including the offset
    seg_index: int = 0
    seg_pos: int = 0
    started: bool = False
    first_sample_wall: float | None = None
    frames_sent: int = 0
    sum_sq: float = 0.0
    count: int = 0
    stop_outcome: Outcome | None = None
    fade_left: int | None = None  # frames of fade-out still to play

    def __post_init__(self) -> None:
        self.total = sum(f for f, _ in self.segments)
        self._skip(self.offset_frames)

    def _skip(self, n: int) -> None:
        while n > 0 and self.seg_index < len(self.segments):
            frames = self.segments[self.seg_index][0]
            take = min(n, frames - self.seg_pos)
            self.seg_pos += take
            self.pos += take
            n -= take
            if self.seg_pos >= frames:
                self.seg_index += 1
                self.seg_pos = 0

    def read(self, n: int, channels: int) -> F32:
        """Up to `n` frames as float32 (n, channels); fewer only at the end."""
        parts: list[F32] = []
        got = 0
        while got < n and self.seg_index < len(self.segments):
            frames, src = self.segments[self.seg_index]
            take = min(n - got, frames - self.seg_pos)
            if src is None:
                parts.append(np.zeros((take, channels), dtype=np.float32))
            else:
                chunk = src[self.seg_pos * channels : (self.seg_pos + take) * channels]
                parts.append(chunk.reshape(take, channels).astype(np.float32) / 32768.0)
            got += take
            self.seg_pos += take
            self.pos += take
            if self.seg_pos >= frames:
                self.seg_index += 1
                self.seg_pos = 0
        if not parts:
            return np.zeros((0, channels), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass(frozen=True)
class Started:
    id: int
    first_sample_wall: float


@dataclass(frozen=True)
class Ended:
    id: int
    ended_wall: float
    outcome: Outcome
    frames_sent: int
    sum_sq: float
    count: int


MixEvent = Started | Ended


@dataclass
class Mixer:
    rate: int
    channels: int
    fade_frames: int = 240  # 5 ms at 48 kHz
    master: float = 1.0
    pending: list[MixVoice] = field(default_factory=list)
    active: list[MixVoice] = field(default_factory=list)

    def add(self, voice: MixVoice) -> None:
        self.pending.append(voice)

    def stop(self, voice_id: int, outcome: Outcome) -> list[MixEvent]:
        """Stop a voice at the next buffer (fading out); a pending one ends at once."""
        for v in self.pending:
            if v.id == voice_id:
                self.pending.remove(v)
                return [Ended(v.id, 0.0, outcome, 0, 0.0, 0)]
        for v in self.active:
            if v.id == voice_id and v.stop_outcome is None:
                v.stop_outcome = outcome
                v.fade_left = self.fade_frames
        return []

    def render(self, out: F32, dac_wall: float) -> list[MixEvent]:
        n = out.shape[0]
        out.fill(0.0)
        events: list[MixEvent] = []
        # Which pending voices start in this buffer, and at which frame.
        starts: list[tuple[int, MixVoice]] = []
        for v in list(self.pending):
            k = 0 if v.at_wall is None else round((v.at_wall - dac_wall) * self.rate)
            if k < n:
                self.pending.remove(v)
                starts.append((max(0, k), v))
        starts.sort(key=lambda kv: kv[0])
        # Each starting voice pre-empts everything playing before its first frame.
        plan: list[tuple[MixVoice, int, int | None]] = []  # voice, begin, fade_at
        for v in self.active:
            plan.append((v, 0, 0 if v.fade_left is not None else None))
        for k, v in starts:
            for i, (old, b, fade_at) in enumerate(plan):
                if fade_at is None:
                    plan[i] = (old, b, k)
                    old.stop_outcome = "preempted"
                    old.fade_left = self.fade_frames
            v.started = True
            v.first_sample_wall = dac_wall + k / self.rate
            events.append(Started(v.id, v.first_sample_wall))
            plan.append((v, k, None))
        still: list[MixVoice] = []
        for v, begin, fade_at in plan:
            end_here = self._play(v, out, begin, fade_at)
            if end_here is None:
                still.append(v)
                continue
            outcome: Outcome = v.stop_outcome or "completed"
            events.append(
                Ended(v.id, dac_wall + end_here / self.rate, outcome, v.frames_sent,
                      v.sum_sq, v.count)
            )  # fmt: skip
        self.active = still
        np.clip(out, -1.0, 1.0, out=out)
        return events

    def _play(self, v: MixVoice, out: F32, begin: int, fade_at: int | None) -> int | None:
        """Mix `v` into `out` from frame `begin`; return the end frame if it finished."""
        n = out.shape[0]
        gain = v.gain * (self.master if v.use_master else 1.0)
        stop = n if fade_at is None else min(n, max(begin, fade_at) + (v.fade_left or 0))
        want = stop - begin
        chunk = v.read(max(0, want), self.channels)
        got = int(chunk.shape[0])
        if got:
            env = np.full(got, gain, dtype=np.float32)
            if fade_at is not None and v.fade_left is not None:
                f0 = max(0, fade_at - begin)
                nf = got - f0
                if nf > 0:
                    left = v.fade_left
                    env[f0:] *= (left - np.arange(nf, dtype=np.float32)) / self.fade_frames
                    v.fade_left = left - nf
            sent = chunk * env[:, None]
            out[begin : begin + got] += sent
            v.frames_sent += got
            v.sum_sq += float(np.vdot(sent, sent))
            v.count += sent.size
        if got < want or v.pos >= v.total:
            return begin + got
        if v.fade_left is not None and v.fade_left <= 0:
            return begin + got
        return None
