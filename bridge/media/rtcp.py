"""Minimal RTCP (RFC 3550 §6) for the phone leg: check a compound packet, read its reports, and build
ours.

The mixer leg has no RTCP (Janus AudioBridge's plain-RTP participants take none), but phones send
reports and some end a call whose far end never reports back, so the phone leg answers with a
receiver report (or a sender report while we send) carrying one report block about the phone's
stream, and the SDES CNAME that §6.1 requires in every compound packet.

What is read: every packet's type; SR and RR headers with their report blocks (enough to count
and log them); SDES CNAMEs; BYE SSRCs. APP, XR, feedback (RFC 4585) and unknown types are
checked for length and skipped. Reduced-size RTCP (RFC 5506, a compound of one non-report packet)
is refused as :rfc:`3550` A.2 refuses it: we never offer ``a=rtcp-rsize``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

SR: Final = 200
RR: Final = 201
SDES: Final = 202
BYE: Final = 203
APP: Final = 204
CNAME: Final = 1
"""The SDES item type of the canonical name (§6.5.1)."""
NTP_UNIX_OFFSET: Final = 2_208_988_800
"""Seconds from 1900-01-01 (the NTP epoch) to 1970-01-01 (the Unix one)."""

_COMMON = struct.Struct("!BBH")  # V/P/count, packet type, length in 32-bit words minus one
_WORD = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!QIII")  # NTP timestamp, RTP timestamp, packet count, octet count
# SSRC, fraction lost (8 bits) and cumulative lost (24), highest sequence, jitter, LSR, DLSR
_BLOCK = struct.Struct("!IIIIII")
_LOST_MAX = 0x7FFFFF  # cumulative lost is 24-bit signed; A.3 clamps it rather than wrap
_LOST_MIN = -0x800000


class RtcpError(ValueError):
    """Not a valid compound RTCP packet. ``reason`` is short and machine-readable: ``short``,
    ``length``, ``version``, ``padding``, ``first``, ``count``, ``sdes``, ``bye``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (§6.4.1): how ``ssrc``'s stream reaches the reporter."""

    ssrc: int
    fraction_lost: int
    """Packets lost since the previous report over packets expected, times 256 (0-255)."""
    cumulative_lost: int
    """Expected minus received since the start; negative with duplicates. Clamped to 24 bits."""
    highest_sequence: int
    """The highest sequence number received, extended with the count of wraparounds."""
    jitter: int
    """Interarrival jitter in timestamp units (A.8)."""
    lsr: int = 0
    """The middle 32 bits of the NTP timestamp of the last SR from ``ssrc``; 0 if none."""
    dlsr: int = 0
    """Time since that SR arrived, in 1/65536 s; 0 if none."""


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """The sender information of an SR (§6.4.1): the NTP and RTP timestamps of one instant, which
    lets the receiver map the sender's RTP clock to wallclock time, and what was sent so far."""

    ntp_timestamp: int
    """64-bit fixed point, seconds since 1900 (:func:`ntp_timestamp`)."""
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    """Payload octets, headers and padding excluded."""


@dataclass(frozen=True, slots=True)
class Report:
    """One SR or RR."""

    ssrc: int
    sender_info: SenderInfo | None
    """None for an RR."""
    blocks: tuple[ReportBlock, ...]


@dataclass(frozen=True, slots=True)
class Compound:
    """What a valid compound packet carries."""

    packet_types: tuple[int, ...]
    reports: tuple[Report, ...]
    cnames: tuple[tuple[int, str], ...]
    """``(ssrc, cname)`` for every SDES chunk that has a CNAME."""
    byes: tuple[int, ...]
    """SSRCs that said BYE."""

    @property
    def block_count(self) -> int:
        return sum(len(report.blocks) for report in self.reports)


def parse_rtcp(data: bytes) -> Compound:
    """Check a compound packet as RFC 3550 A.2 does and read it, or :class:`RtcpError`.

    A.2: the length is a whole number of 32-bit words; the first packet is version 2, unpadded
    (padding belongs to the last packet only, §6.4.1) and an SR or RR (§6.1); every packet is
    version 2 and their lengths add up to the datagram exactly. Beyond A.2, every count (report
    blocks, SDES chunks, BYE SSRCs) must fit inside its packet.
    """
    size = len(data)
    if size < 8:  # the smallest valid packet, an RR with no block, is 8 octets
        raise RtcpError("short")
    if size % 4:
        raise RtcpError("length")
    if data[0] & 0xC0 != 0x80:
        raise RtcpError("version")
    if data[0] & 0x20:
        raise RtcpError("padding")
    if data[1] not in (SR, RR):
        raise RtcpError("first")
    types: list[int] = []
    reports: list[Report] = []
    cnames: list[tuple[int, str]] = []
    byes: list[int] = []
    offset = 0
    while offset < size:
        first, packet_type, words = _COMMON.unpack_from(data, offset)
        if first & 0xC0 != 0x80:
            raise RtcpError("version")
        end = offset + 4 * (words + 1)
        if end > size:
            raise RtcpError("length")
        body_end = end
        if first & 0x20:
            padding = data[end - 1]
            if end != size or padding == 0 or padding > end - offset - 4:
                raise RtcpError("padding")
            body_end -= padding
        count = first & 0x1F
        body = offset + 4
        if packet_type in (SR, RR):
            reports.append(_report(data, packet_type, count, body, body_end))
        elif packet_type == SDES:
            cnames += _cnames(data, count, body, body_end)
        elif packet_type == BYE:
            if body + 4 * count > body_end:
                raise RtcpError("bye")
            byes += [_WORD.unpack_from(data, body + 4 * i)[0] for i in range(count)]
        types.append(packet_type)
        offset = end
    return Compound(tuple(types), tuple(reports), tuple(cnames), tuple(byes))


def _report(data: bytes, packet_type: int, count: int, start: int, end: int) -> Report:
    fixed = 24 if packet_type == SR else 4  # SSRC, and an SR's 20 octets of sender info
    if start + fixed + _BLOCK.size * count > end:
        raise RtcpError("count")
    (ssrc,) = _WORD.unpack_from(data, start)
    sender = SenderInfo(*_SENDER_INFO.unpack_from(data, start + 4)) if packet_type == SR else None
    blocks = []
    for position in range(start + fixed, start + fixed + _BLOCK.size * count, _BLOCK.size):
        source, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, position)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        blocks.append(ReportBlock(source, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
    return Report(ssrc, sender, tuple(blocks))


def _cnames(data: bytes, count: int, position: int, end: int) -> list[tuple[int, str]]:
    """§6.5: ``count`` chunks, each an SSRC and items (type, length, text) up to a null type octet,
    then null octets to the next 32-bit boundary."""
    found: list[tuple[int, str]] = []
    for _ in range(count):
        if position + 4 > end:
            raise RtcpError("sdes")
        (ssrc,) = _WORD.unpack_from(data, position)
        position += 4
        while True:
            if position >= end:
                raise RtcpError("sdes")
            item = data[position]
            if item == 0:
                position = (position + 4) & ~3  # the null octet and the padding after it
                break
            if position + 2 > end or position + 2 + data[position + 1] > end:
                raise RtcpError("sdes")
            length = data[position + 1]
            if item == CNAME:
                text = data[position + 2 : position + 2 + length]
                found.append((ssrc, text.decode("utf-8", errors="replace")))
            position += 2 + length
    return found


def build_receiver_report(ssrc: int, cname: str, block: ReportBlock | None = None) -> bytes:
    """A compound RR + SDES CNAME from ``ssrc`` (§6.4.2), with ``block`` if we have received
    anything to report on."""
    blocks = (block,) if block is not None else ()
    return _packet(RR, len(blocks), _WORD.pack(ssrc) + _blocks(blocks)) + _sdes(ssrc, cname)


def build_sender_report(
    ssrc: int, cname: str, sender: SenderInfo, block: ReportBlock | None = None
) -> bytes:
    """A compound SR + SDES CNAME from ``ssrc`` (§6.4.1)."""
    blocks = (block,) if block is not None else ()
    info = _SENDER_INFO.pack(
        sender.ntp_timestamp & 0xFFFFFFFFFFFFFFFF,
        sender.rtp_timestamp & 0xFFFFFFFF,
        sender.packet_count & 0xFFFFFFFF,  # §6.4.1: these wrap
        sender.octet_count & 0xFFFFFFFF,
    )
    return _packet(SR, len(blocks), _WORD.pack(ssrc) + info + _blocks(blocks)) + _sdes(ssrc, cname)


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    return _COMMON.pack(0x80 | count, packet_type, len(body) // 4) + body


def _blocks(blocks: tuple[ReportBlock, ...]) -> bytes:
    return b"".join(
        _BLOCK.pack(
            b.ssrc,
            (min(max(b.fraction_lost, 0), 255) << 24)
            | (min(max(b.cumulative_lost, _LOST_MIN), _LOST_MAX) & 0xFFFFFF),
            b.highest_sequence & 0xFFFFFFFF,
            b.jitter & 0xFFFFFFFF,
            b.lsr & 0xFFFFFFFF,
            b.dlsr & 0xFFFFFFFF,
        )
        for b in blocks
    )


def _sdes(ssrc: int, cname: str) -> bytes:
    text = cname.encode()
    if not 0 < len(text) <= 255:  # the item length is one octet; §6.5.1 wants a non-empty name
        raise ValueError("a CNAME is 1-255 octets of UTF-8")
    chunk = _WORD.pack(ssrc) + bytes((CNAME, len(text))) + text
    chunk += bytes(4 - len(chunk) % 4)  # the terminating null item, padded to 32 bits (1-4 nulls)
    return _packet(SDES, 1, chunk)


def ntp_timestamp(unix_time: float) -> int:
    """Wallclock time (seconds since 1970) as a 64-bit NTP timestamp (§4): seconds since 1900 in
    the high 32 bits (wrapping in 2036, as §4 allows), the fraction in the low 32."""
    seconds = int(unix_time // 1)
    fraction = int((unix_time - seconds) * (1 << 32)) & 0xFFFFFFFF
    return (((seconds + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | fraction


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: an SR's LSR as the receiver echoes it (§6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF
