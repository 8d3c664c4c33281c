"""G.711 µ-law and A-law (ITU-T G.711, 11/88), by table: linear PCM in and out, and µ-law <-> A-law.

The bridge relays G.711 as it comes and never needs to decode it on the packet path; these tables
are for the two places that do: converting a phone that only offers PCMA for a mixer leg set up
for PCMU (or the other way round), which is one ``bytes.translate`` per payload, and audio checks
(levels, tones) in :mod:`bridge.media.analysis` and the tests.

The scalar encoders and decoders are the classic bit-level algorithms (the public-domain Sun
``g711.c``, with the 1994 corrections for unquantised 16-bit input); they are used only to build
the tables, at import. Conventions:

- linear samples are signed 16-bit integers; PCM buffers are 16-bit little-endian, as in WAV;
- the encoders take the full 16-bit range and clip (µ-law at ±32635, as G.711's 14-bit range);
- µ-law <-> A-law goes through the linear value: decode, then encode with the other law's decision
  levels (as Asterisk's ``codec_a_mu`` builds its tables). G.711's own Tables 3 and 4 differ from
  this in a few dozen codes, by one quantisation step: they are chosen so that a tandem conversion
  on digital trunks (A -> µ -> A) gives back the original code. The bridge converts at most once
  per direction, where either table is within one step of the source value, and a derived table
  is one that can be checked against the encoder and decoder (tests/media/test_g711.py).

The audioop module is not used: it is deprecated (PEP 594) and gone in Python 3.13.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

ULAW_SILENCE: Final = 0xFF
"""µ-law for 0 (the positive zero): what a silent µ-law payload is made of."""
ALAW_SILENCE: Final = 0xD5
"""A-law for 0 (the smallest positive value, with the even bits inverted)."""

_ULAW_BIAS = 0x84  # 132: shifts the linear range so that each segment starts at a power of two
_ULAW_CLIP = 32635  # 32767 - 132: the largest magnitude that still fits after the bias
_ULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)  # on 14-bit values
_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)  # on 13-bit values


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for segment, end in enumerate(ends):
        if value <= end:
            return segment
    return len(ends)


def linear_to_ulaw(sample: int) -> int:
    """One 16-bit sample to its µ-law code (the complemented code word, as transmitted)."""
    value = sample >> 2  # µ-law has 14 bits of range
    mask = 0xFF
    if value < 0:
        value = -value
        mask = 0x7F
    value = min(value, _ULAW_CLIP >> 2) + (_ULAW_BIAS >> 2)
    segment = _segment(value, _ULAW_SEGMENT_ENDS)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def ulaw_to_linear(code: int) -> int:
    """One µ-law code to its 16-bit reconstruction value."""
    code = ~code & 0xFF
    value = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return _ULAW_BIAS - value if code & 0x80 else value - _ULAW_BIAS


def linear_to_alaw(sample: int) -> int:
    """One 16-bit sample to its A-law code (even bits inverted, as transmitted)."""
    value = sample >> 3  # A-law has 13 bits of range
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = _segment(value, _ALAW_SEGMENT_ENDS)
    if segment >= 8:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    return ((segment << 4) | ((value >> shift) & 0x0F)) ^ mask


def alaw_to_linear(code: int) -> int:
    """One A-law code to its 16-bit reconstruction value."""
    code ^= 0x55
    value = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        value += 8
    else:
        value = (value + 0x108) << (segment - 1)
    return value if code & 0x80 else -value


def _pcm_samples(pcm: bytes) -> tuple[int, ...]:
    if len(pcm) % 2:
        raise ValueError("16-bit PCM has an even number of bytes")
    return struct.unpack(f"<{len(pcm) // 2}H", pcm)  # unsigned: the index into a 65,536 table


@dataclass(frozen=True, slots=True, eq=False)
class Law:
    """One of the two G.711 laws, with its tables. Use :data:`ULAW` and :data:`ALAW`."""

    name: str
    """The RTP encoding name (RFC 3551 §4.5.14): ``PCMU`` or ``PCMA``."""
    payload_type: int
    """The static payload type (RFC 3551 Table 4): 0 or 8."""
    silence: int
    """The code for 0, to pad and fill with."""
    to_linear: tuple[int, ...]
    """Code -> 16-bit sample, 256 entries."""
    _encode: bytes  # 16-bit sample (as unsigned) -> code, 65,536 entries
    _pcm_low: bytes  # code -> low byte of its little-endian sample, for bytes.translate
    _pcm_high: bytes  # code -> high byte

    def silence_frame(self, size: int) -> bytes:
        """``size`` bytes of silence."""
        return bytes((self.silence,)) * size

    def decode(self, data: bytes) -> bytes:
        """G.711 bytes to 16-bit little-endian PCM: two ``bytes.translate`` and two slice stores."""
        pcm = bytearray(2 * len(data))
        pcm[0::2] = data.translate(self._pcm_low)
        pcm[1::2] = data.translate(self._pcm_high)
        return bytes(pcm)

    def encode(self, pcm: bytes) -> bytes:
        """16-bit little-endian PCM to G.711 bytes."""
        return bytes(map(self._encode.__getitem__, _pcm_samples(pcm)))

    def samples(self, data: bytes) -> list[int]:
        """G.711 bytes to samples."""
        return list(map(self.to_linear.__getitem__, data))

    def from_samples(self, samples: Iterable[int]) -> bytes:
        """Samples (clipped to 16 bits) to G.711 bytes."""
        table = self._encode
        return bytes(table[min(max(s, -0x8000), 0x7FFF) & 0xFFFF] for s in samples)


def _law(  # noqa: PLR0917  (called twice, in one shape)
    name: str,
    payload_type: int,
    silence: int,
    encoder: Callable[[int], int],
    decoder: Callable[[int], int],
    shift: int,
) -> Law:
    # The encoder reads only the top 14 (µ) or 13 (A) bits of a sample, so the 65,536-entry table
    # is a short one with each entry repeated 2^shift times: a few ms at import instead of 65,536
    # calls of the scalar encoder. Index i of the short table is the unsigned sample i << shift.
    short = [encoder(((i << shift) ^ 0x8000) - 0x8000) for i in range(1 << (16 - shift))]
    repeat = 1 << shift
    decoded = tuple(decoder(code) for code in range(256))
    return Law(
        name=name,
        payload_type=payload_type,
        silence=silence,
        to_linear=decoded,
        _encode=b"".join(bytes((code,)) * repeat for code in short),
        _pcm_low=bytes(v & 0xFF for v in decoded),
        _pcm_high=bytes((v >> 8) & 0xFF for v in decoded),
    )


ULAW: Final = _law("PCMU", 0, ULAW_SILENCE, linear_to_ulaw, ulaw_to_linear, 2)
ALAW: Final = _law("PCMA", 8, ALAW_SILENCE, linear_to_alaw, alaw_to_linear, 3)

_ULAW_TO_ALAW: Final = bytes(ALAW._encode[v & 0xFFFF] for v in ULAW.to_linear)
_ALAW_TO_ULAW: Final = bytes(ULAW._encode[v & 0xFFFF] for v in ALAW.to_linear)


def ulaw_to_alaw(data: bytes) -> bytes:
    """A µ-law payload as A-law: one ``bytes.translate`` (about 0.2 µs for 160 bytes)."""
    return data.translate(_ULAW_TO_ALAW)


def alaw_to_ulaw(data: bytes) -> bytes:
    """An A-law payload as µ-law."""
    return data.translate(_ALAW_TO_ULAW)
