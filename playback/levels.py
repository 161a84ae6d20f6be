"""Signal levels (pure). dBFS here is RMS relative to a full-scale square wave.

So a full-scale sine reads -3.01 dBFS; silence reads `SILENCE_DBFS` rather than -inf
because the value goes into JSON proofs, where -inf cannot be written.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

SILENCE_DBFS = -120.0


def dbfs_from_power(sum_sq: float, count: int) -> float:
    """RMS level in dBFS from a sum of squared samples (full scale = 1.0) and their count."""
    if count <= 0 or sum_sq <= 0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(sum_sq / count))


def rms_dbfs(x: npt.NDArray[np.floating]) -> float:
    """RMS level of float samples in dBFS."""
    a = np.asarray(x, dtype=np.float64)
    return dbfs_from_power(float(np.dot(a.ravel(), a.ravel())), a.size)


def volume_to_gain(level: int) -> float:
    """Protocol volume 0-100 to a linear amplitude gain.

    Squared, so that the knob feels even to the ear (50 is -12 dB, 10 is -40 dB)
    instead of linear amplitude, where 50 sounds barely quieter than 100.
    """
    if not 0 <= level <= 100:
        raise ValueError(f"volume {level} is outside 0-100")
    return (level / 100.0) ** 2
