"""Audio levels and tones, in pure Python: is this speech-level audio, a given tone, or silence?

Run time uses the level (:func:`payload_dbov`, from G.711 bytes directly) for speaking indication;
the tests use all of it to check that what a relay delivers is the tone that went in and not
silence or noise. Levels are relative to full scale: a square wave at ±32768 is 0 dBFS (power
1.0), a full-scale sine -3 dBFS (power 0.5). RFC 6464 calls the same scale dBov.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .g711 import Law

FULL_SCALE = 32768
SILENT_DB = -127.0
"""The floor reported for digital silence, instead of -inf: RFC 6464's lowest level."""

_SQUARES: dict[str, tuple[int, ...]] = {}


def mean_power(samples: Sequence[int]) -> float:
    """Mean square of 16-bit samples, relative to full scale (0.0 for no samples)."""
    if not samples:
        return 0.0
    return sum(s * s for s in samples) / (len(samples) * FULL_SCALE * FULL_SCALE)


def to_db(power: float) -> float:
    """A power relative to full scale in dB, floored at :data:`SILENT_DB`."""
    return max(10 * math.log10(power), SILENT_DB) if power > 0 else SILENT_DB


def rms_dbfs(samples: Sequence[int]) -> float:
    """The RMS level of 16-bit samples in dBFS."""
    return to_db(mean_power(samples))


def payload_dbov(payload: bytes, law: Law, stride: int = 1) -> float:
    """The level of a G.711 payload in dBov, without decoding it: one table look-up per byte read.

    That is about 6 µs for 160 bytes (``bench/media_core.py``), 30 % of a relayed packet's budget,
    so a speaking indicator should read every ``stride``-th byte (4 still gives 40 samples per
    20 ms, plenty for a level) or only every few packets."""
    squares = _SQUARES.get(law.name)
    if squares is None:
        squares = _SQUARES[law.name] = tuple(v * v for v in law.to_linear)
    if stride > 1:
        payload = payload[::stride]
    if not payload:
        return SILENT_DB
    total = sum(map(squares.__getitem__, payload))
    return to_db(total / (len(payload) * FULL_SCALE * FULL_SCALE))


def tone_power(samples: Sequence[int], freq: float, rate: int) -> float:
    """The power of the ``freq`` Hz component of ``samples`` (Goertzel), on the scale of
    :func:`mean_power`: for a pure tone the two agree, so ``tone_power / mean_power`` says how
    much of the signal is that tone. One pass, no FFT: what DTMF detectors do for the same reason
    (a handful of frequencies of interest)."""
    n = len(samples)
    if n == 0:
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for sample in samples:
        s1, s2 = sample + coefficient * s1 - s2, s1
    magnitude_squared = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    # |X|^2 = (A N / 2)^2 for a sine of amplitude A, whose mean power is A^2 / 2.
    return max(2 * magnitude_squared / (n * n * FULL_SCALE * FULL_SCALE), 0.0)


def dominant_frequency(samples: Sequence[int], rate: int, candidates: Iterable[float]) -> float:
    """The candidate frequency with the most power in ``samples``."""
    return max(candidates, key=lambda freq: tone_power(samples, freq, rate))
