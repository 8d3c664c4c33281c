"""G.711 µ-law and A-law: reference code points, the whole 16-bit range, buffers and conversion."""

from __future__ import annotations

import array
import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.media.g711 import (
    ALAW,
    ALAW_SILENCE,
    ULAW,
    ULAW_SILENCE,
    Law,
    alaw_to_linear,
    alaw_to_ulaw,
    linear_to_alaw,
    linear_to_ulaw,
    ulaw_to_alaw,
    ulaw_to_linear,
)

LAWS = pytest.mark.parametrize("law", [ULAW, ALAW], ids=lambda law: law.name)


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        (0, 0xFF),  # positive zero: µ-law silence
        (-8, 0x7E),  # the smallest negative step (0x7F, negative zero, is never produced)
        (1000, 0xCE),  # segment 3, step 1: 988 when decoded
        (-1000, 0x4E),
        (32767, 0x80),  # the largest code
        (-32768, 0x00),
        (32700, 0x80),  # anything past the clip level, 32635
    ],
)
def test_ulaw_code_points(sample: int, code: int) -> None:
    assert linear_to_ulaw(sample) == code


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        (0, 0xD5),  # A-law silence: the smallest positive value
        (-1, 0x55),
        (-8, 0x55),
        (1000, 0xFA),  # segment 3
        (32767, 0xAA),
        (-32768, 0x2A),
    ],
)
def test_alaw_code_points(sample: int, code: int) -> None:
    assert linear_to_alaw(sample) == code


@pytest.mark.parametrize(
    ("decode", "code", "sample"),
    [
        (ulaw_to_linear, 0xFF, 0),
        (ulaw_to_linear, 0x7F, 0),
        (ulaw_to_linear, 0xCE, 988),
        (ulaw_to_linear, 0x80, 32124),
        (ulaw_to_linear, 0x00, -32124),
        (alaw_to_linear, 0xD5, 8),
        (alaw_to_linear, 0x55, -8),
        (alaw_to_linear, 0xFA, 1008),
        (alaw_to_linear, 0xAA, 32256),
        (alaw_to_linear, 0x2A, -32256),
    ],
)
def test_decode_code_points(decode: object, code: int, sample: int) -> None:
    assert callable(decode)
    assert decode(code) == sample


def test_silence_codes() -> None:
    assert (ULAW.silence, ALAW.silence) == (ULAW_SILENCE, ALAW_SILENCE) == (0xFF, 0xD5)
    assert ULAW.silence_frame(160) == b"\xff" * 160
    assert ALAW.silence_frame(3) == b"\xd5\xd5\xd5"
    assert (ULAW.payload_type, ALAW.payload_type) == (0, 8)  # RFC 3551 Table 4
    assert ulaw_to_alaw(b"\xff") == b"\xd5"


@LAWS
def test_tables_agree_with_the_scalar_code_over_the_whole_range(law: Law) -> None:
    encode = linear_to_ulaw if law is ULAW else linear_to_alaw
    decode = ulaw_to_linear if law is ULAW else alaw_to_linear
    pcm = array.array("h", range(-32768, 32768))
    if sys.byteorder == "big":
        pcm.byteswap()
    codes = law.encode(pcm.tobytes())
    assert codes == bytes(encode(s) for s in range(-32768, 32768))
    assert law.to_linear == tuple(decode(c) for c in range(256))


@LAWS
def test_quantisation_error_is_within_half_a_step(law: Law) -> None:
    # A segment's 16 steps span a doubling of the magnitude, so half a step is 1/32 of it; the
    # finest step near zero is 16 (A) or 8-16 (µ, with its bias) in 16-bit units.
    clip = 32635 if law is ULAW else 32767
    for sample in range(-32768, 32768, 7):
        expected = min(max(sample, -clip), clip)
        decoded = law.to_linear[law.from_samples([sample])[0]]
        assert abs(decoded - expected) <= abs(expected) / 32 + 8


@LAWS
def test_encode_is_monotonic(law: Law) -> None:
    values = [law.to_linear[law.from_samples([s])[0]] for s in range(-32768, 32768, 13)]
    assert values == sorted(values)


@LAWS
def test_every_code_survives_decode_then_encode(law: Law) -> None:
    codes = bytes(range(256))
    again = law.from_samples(law.samples(codes))
    # µ-law has two zeros (0x7F and 0xFF); the encoder writes the positive one.
    assert again == (codes.replace(b"\x7f", b"\xff") if law is ULAW else codes)


@LAWS
@given(data=st.binary(max_size=400))
def test_pcm_buffers_round_trip(law: Law, data: bytes) -> None:
    pcm = law.decode(data)
    assert len(pcm) == 2 * len(data)
    assert list(struct.unpack(f"<{len(data)}h", pcm)) == law.samples(data)
    assert law.encode(pcm) == law.from_samples(law.samples(data))


@LAWS
def test_from_samples_clips_to_16_bits(law: Law) -> None:
    assert law.from_samples([10**6, -(10**6)]) == law.from_samples([32767, -32768])


def test_odd_pcm_is_refused() -> None:
    with pytest.raises(ValueError, match="even number"):
        ULAW.encode(b"\x00\x00\x00")


def test_conversion_is_decode_then_encode_and_within_a_step() -> None:
    codes = bytes(range(256))
    assert ulaw_to_alaw(codes) == ALAW.from_samples(ULAW.samples(codes))
    assert alaw_to_ulaw(codes) == ULAW.from_samples(ALAW.samples(codes))
    for u, a in zip(codes, ulaw_to_alaw(codes), strict=True):
        source = ULAW.to_linear[u]
        assert abs(ALAW.to_linear[a] - source) <= abs(source) / 16 + 16
    for a, u in zip(codes, alaw_to_ulaw(codes), strict=True):
        source = ALAW.to_linear[a]
        assert abs(ULAW.to_linear[u] - source) <= abs(source) / 16 + 16


@given(st.binary(max_size=320))
def test_conversion_keeps_length_and_order(data: bytes) -> None:
    converted = ulaw_to_alaw(data)
    assert len(converted) == len(data)
    assert converted == bytes(ulaw_to_alaw(bytes((b,)))[0] for b in data)
