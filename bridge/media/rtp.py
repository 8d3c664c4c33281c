"""RTP packets (RFC 3550 §5.1): read and write the fixed header on the relay's per-packet path.

The relay carries about 50,000 packets a second on one core, and the whole per-packet budget is
20 µs, so this module is written for speed first:

- one ``struct.Struct.unpack_from`` reads the whole fixed header, and a packet without padding,
  extension or CSRCs (every packet a phone or Janus sends) takes a single branch to its payload;
- the payload is ``bytes`` (a slice), not a ``memoryview``: for the 80-320 byte payloads of G.711 a
  slice costs less than making a view (one allocation instead of two), and ``bytes`` is what the
  rest of the media core works with (``bytes.translate``, hashing, ``==``);
- :class:`RtpPacket` is a frozen slots dataclass, but :func:`parse_rtp` fills it through its slot
  descriptors instead of the generated ``__init__``: a frozen dataclass sets each field through
  ``object.__setattr__``, and with it a parse costs two thirds more (1.0 against 0.6 µs on the
  reference host; ``bench/media_core.py`` measures both).

CSRCs and header extensions are skipped, not kept: the bridge is the end of both legs, it mixes
nothing and negotiates no extension (RFC 8285), so nothing downstream reads them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

VERSION: Final = 2
HEADER_SIZE: Final = 12
"""The fixed header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC (§5.1)."""
SEQ_MOD: Final = 1 << 16
TS_MOD: Final = 1 << 32

_HEADER = struct.Struct("!BBHII")
_WORD = struct.Struct("!H")
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet. ``reason`` is short and machine-readable, for
    counters: ``short``, ``version``, ``csrc``, ``extension``, ``padding``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet, header fields as numbers. ``payload`` excludes CSRCs, the header extension
    and padding."""

    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


# The fast constructor (see the module docstring): the slot descriptors set a frozen instance's
# fields without going through its __setattr__ (which raises) or object.__setattr__ (slow).
_new: Final = object.__new__
_slots: dict[str, Any] = dict(RtpPacket.__dict__)
_set_marker: Callable[[RtpPacket, bool], None] = _slots["marker"].__set__
_set_payload_type: Callable[[RtpPacket, int], None] = _slots["payload_type"].__set__
_set_sequence: Callable[[RtpPacket, int], None] = _slots["sequence"].__set__
_set_timestamp: Callable[[RtpPacket, int], None] = _slots["timestamp"].__set__
_set_ssrc: Callable[[RtpPacket, int], None] = _slots["ssrc"].__set__
_set_payload: Callable[[RtpPacket, bytes], None] = _slots["payload"].__set__
del _slots


def parse_rtp(data: bytes) -> RtpPacket:
    """The packet in ``data`` (one datagram), or :class:`RtpError`.

    The checks are those of §5.1 and the validity check of RFC 3550 A.1 that can be made on one
    packet: version 2, and every length (CSRC count, extension length, padding count) within the
    datagram. Whether the payload type is one the session negotiated is the caller's check, and so
    is demultiplexing RTCP (:func:`is_rtcp`, RFC 5761 §4) when both share a port.
    """
    size = len(data)
    if size < HEADER_SIZE:
        raise RtpError("short")
    b0, b1, sequence, timestamp, ssrc = _unpack_header(data)
    if b0 & 0xC0 != 0x80:
        raise RtpError("version")
    if b0 & 0x3F:  # padding, extension or CSRCs: rare, so out of line
        start = _payload_start(data, b0, size)
        payload = data[start : _payload_end(data, b0, size, start)]
    else:
        payload = data[HEADER_SIZE:]
    packet = _new(RtpPacket)
    _set_marker(packet, b1 > 0x7F)
    _set_payload_type(packet, b1 & 0x7F)
    _set_sequence(packet, sequence)
    _set_timestamp(packet, timestamp)
    _set_ssrc(packet, ssrc)
    _set_payload(packet, payload)
    return packet


def _payload_start(data: bytes, b0: int, size: int) -> int:
    start = HEADER_SIZE + 4 * (b0 & 0x0F)
    if start > size:
        raise RtpError("csrc")
    if b0 & 0x10:  # §5.3.1: a 4-octet extension header, then its length in 32-bit words
        if start + 4 > size:
            raise RtpError("extension")
        (words,) = _WORD.unpack_from(data, start + 2)
        start += 4 + 4 * words
        if start > size:
            raise RtpError("extension")
    return start


def _payload_end(data: bytes, b0: int, size: int, start: int) -> int:
    if not b0 & 0x20:
        return size
    # §5.1: the last octet counts the padding octets, itself included, so it is at least 1. It
    # must leave the header whole (the payload may be empty).
    count = data[-1]
    if count == 0 or count > size - start:
        raise RtpError("padding")
    return size - count


def build_rtp(  # noqa: PLR0917  (positional: keywords cost time on the packet path)
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
) -> bytes:
    """One RTP packet with no padding, extension or CSRC.

    ``sequence`` and ``timestamp`` are taken modulo 2^16 and 2^32, so that callers can count
    without wrapping; ``payload_type`` must be 0-127 (a larger one would overwrite the marker
    bit), ``ssrc`` 0 to 2^32-1.
    """
    if not 0 <= payload_type <= 0x7F:
        raise ValueError(f"payload type {payload_type} is not 0-127")
    second = payload_type | 0x80 if marker else payload_type
    return _pack_header(0x80, second, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on a port that carries both RTP and RTCP is RTCP (RFC 5761 §4).

    RTCP packet types 192-223 occupy the second octet where RTP has the marker bit and payload
    types 64-95, which RTP sessions that multiplex must not use; every RTCP compound packet starts
    with SR (200) or RR (201), inside that range.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


def seq_delta(a: int, b: int) -> int:
    """``a - b`` for 16-bit sequence numbers, in -32768..32767 (RFC 3550 A.1 serial arithmetic)."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(a: int, b: int) -> int:
    """``a - b`` for 32-bit RTP timestamps, in -2^31..2^31-1: the shorter way round the circle."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000
