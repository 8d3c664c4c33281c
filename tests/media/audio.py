"""Test audio: tones as samples and as G.711 bytes."""

from __future__ import annotations

import math

from bridge.media.g711 import Law


def tone_samples(
    freq: float, count: int, *, level_db: float = -10.0, rate: int = 8000
) -> list[int]:
    """``count`` samples of a sine at ``freq`` Hz whose peak is ``level_db`` below full scale."""
    amplitude = 32767 * 10 ** (level_db / 20)
    return [round(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(count)]


def tone(law: Law, freq: float, count: int, *, level_db: float = -10.0) -> bytes:
    """The same as G.711 bytes."""
    return law.from_samples(tone_samples(freq, count, level_db=level_db))
