"""The attention chime played before each repeat of an emergency message.

Two tones, 880 Hz then 660 Hz (a falling "ding-dong" people recognise as an
announcement), 0.6 s each with 10 ms raised-cosine edges so it never clicks. Generated
with numpy and written once as raw PCM in the engine's format.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from playback.decode import _commit

TONES_HZ = (880.0, 660.0)
TONE_S = 0.6
LEVEL = 0.5  # -6 dBFS peak: loud but with headroom for the amplifier


def tone(freq_hz: float, seconds: float, rate: int, *, level: float = LEVEL,
         edge_s: float = 0.01) -> npt.NDArray[np.float32]:  # fmt: skip
    """A sine with raised-cosine fade-in/out, float32 mono."""
    n = round(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    x = level * np.sin(2 * np.pi * freq_hz * t)
    e = min(n // 2, round(edge_s * rate))
    if e > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, e))
        x[:e] *= ramp
        x[n - e :] *= ramp[::-1]
    return x.astype(np.float32)


def chime_samples(rate: int) -> npt.NDArray[np.float32]:
    return np.concatenate([tone(f, TONE_S, rate) for f in TONES_HZ])


def write_pcm(samples: npt.NDArray[np.float32], dst: Path, channels: int) -> Path:
    """Write mono float samples as s16le PCM with `channels` identical channels."""
    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        pcm.tofile(tmp)
        _commit(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def chime_pcm(pcm_dir: Path, rate: int, channels: int) -> Path:
    """The chime as a cached PCM file in the engine's format."""
    return write_pcm(chime_samples(rate), pcm_dir / f"chime-v1.{rate}x{channels}.s16", channels)
