"""Levels and tone detection: a tone through G.711 is still that tone, and silence is silence."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.media.analysis import (
    SILENT_DB,
    dominant_frequency,
    mean_power,
    payload_dbov,
    rms_dbfs,
    tone_power,
)
from bridge.media.g711 import ALAW, ULAW, Law

from .audio import tone, tone_samples

LAWS = pytest.mark.parametrize("law", [ULAW, ALAW], ids=lambda law: law.name)
DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)


def test_full_scale_sine_is_minus_3_dbfs() -> None:
    samples = tone_samples(1000, 800, level_db=0.0)
    assert rms_dbfs(samples) == pytest.approx(-3.01, abs=0.01)
    assert tone_power(samples, 1000, 8000) == pytest.approx(mean_power(samples), rel=1e-3)


def test_silence_is_the_floor() -> None:
    assert rms_dbfs([0] * 160) == SILENT_DB
    assert rms_dbfs([]) == SILENT_DB
    assert payload_dbov(ULAW.silence_frame(160), ULAW) == SILENT_DB
    assert payload_dbov(b"", ULAW) == SILENT_DB
    # A-law has no zero: its silence is ±8, about -72 dBov
    assert payload_dbov(ALAW.silence_frame(160), ALAW) == pytest.approx(-72.2, abs=0.1)
    assert tone_power([], 1000, 8000) == 0.0


@LAWS
@pytest.mark.parametrize("freq", [440.0, 1000.0, 1633.0])
def test_a_tone_through_g711_is_that_tone(law: Law, freq: float) -> None:
    samples = law.samples(tone(law, freq, 800, level_db=-10))
    total = mean_power(samples)
    assert rms_dbfs(samples) == pytest.approx(-13.0, abs=0.3)
    assert tone_power(samples, freq, 8000) / total > 0.95
    assert tone_power(samples, freq + 200, 8000) / total < 0.01
    assert payload_dbov(law.from_samples(samples), law) == pytest.approx(
        rms_dbfs(samples), abs=1e-9
    )


def test_a_subsampled_level_is_close() -> None:
    payload = tone(ULAW, 440, 160, level_db=-20)
    assert payload_dbov(payload, ULAW, 4) == pytest.approx(payload_dbov(payload, ULAW), abs=1.0)


def test_dominant_frequency_picks_the_tone() -> None:
    samples = [
        a + b
        for a, b in zip(tone_samples(852, 400), tone_samples(1477, 400, level_db=-20), strict=True)
    ]
    assert dominant_frequency(samples, 8000, DTMF_ROWS) == 852.0


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_tone_power_never_exceeds_the_signal(samples: list[int]) -> None:
    # Parseval, for one bin: no component carries more than twice the mean power (a bin's
    # estimate of a sinusoid counts both its positive and negative frequency).
    power = mean_power(samples)
    assert 0.0 <= tone_power(samples, 1000, 8000) <= 2 * power + 1e-12
    assert rms_dbfs(samples) >= SILENT_DB
    assert not math.isnan(rms_dbfs(samples))
