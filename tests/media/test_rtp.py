"""RFC 3550 §5.1 packets: hand-built vectors, every length check, and Hypothesis over any bytes."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.media.rtp import (
    RtpError,
    RtpPacket,
    build_rtp,
    is_rtcp,
    parse_rtp,
    seq_delta,
    ts_delta,
)

# V=2, no P/X/CC; M=0 PT=0; seq 1; timestamp 160; SSRC 0xdeadbeef; four bytes of µ-law.
PLAIN = bytes.fromhex("80000001000000a0deadbeef") + b"\xff\xfe\x7f\x00"
# V=2 CC=2; M=1 PT=101 (a telephone-event start); two CSRCs; an RFC 4733 payload: key 5, volume
# 10, duration 160 (RFC 4733 §2.3 layout).
WITH_CSRC = (
    bytes.fromhex("82e53039075bcd1500000001")
    + bytes.fromhex("0000000a0000000b")
    + bytes.fromhex("050a00a0")
)
# V=2 X=1; the §5.3.1 extension header: profile 0xbede (RFC 8285 one-byte), length 1 word.
WITH_EXTENSION = bytes.fromhex("9008000200000140000000") + b"\x2a"
WITH_EXTENSION += bytes.fromhex("bede0001") + bytes.fromhex("10ff0000") + b"\xd5" * 3
# V=2 P=1; payload "ab", then three octets of padding whose last counts them.
WITH_PADDING = bytes.fromhex("a0000005000000000000002a") + b"ab" + b"\x00\x00\x03"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            PLAIN, RtpPacket(False, 0, 1, 160, 0xDEADBEEF, b"\xff\xfe\x7f\x00"), id="plain"
        ),
        pytest.param(
            WITH_CSRC, RtpPacket(True, 101, 12345, 123456789, 1, b"\x05\x0a\x00\xa0"), id="csrc"
        ),
        pytest.param(WITH_EXTENSION, RtpPacket(False, 8, 2, 320, 42, b"\xd5" * 3), id="extension"),
        pytest.param(WITH_PADDING, RtpPacket(False, 0, 5, 0, 42, b"ab"), id="padding"),
        pytest.param(PLAIN[:12], RtpPacket(False, 0, 1, 160, 0xDEADBEEF, b""), id="empty"),
        pytest.param(
            bytes.fromhex("a0000005000000000000002a01"),
            RtpPacket(False, 0, 5, 0, 42, b""),
            id="padding-only",
        ),
    ],
)
def test_parse_vectors(data: bytes, expected: RtpPacket) -> None:
    assert parse_rtp(data) == expected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "short", id="empty"),
        pytest.param(PLAIN[:11], "short", id="eleven"),
        pytest.param(b"\x00" + PLAIN[1:], "version", id="v0"),
        pytest.param(b"\x40" + PLAIN[1:], "version", id="v1"),
        pytest.param(b"\xc0" + PLAIN[1:], "version", id="v3"),
        pytest.param(b"\x82" + PLAIN[1:16], "csrc", id="csrc-count"),  # two CSRCs, one word left
        pytest.param(b"\x8f" + PLAIN[1:], "csrc", id="fifteen-csrcs"),
        pytest.param(b"\x90" + PLAIN[1:12] + b"\xbe\xde", "extension", id="extension-header"),
        pytest.param(
            b"\x90" + PLAIN[1:12] + b"\xbe\xde\x00\x02" + b"1234", "extension", id="ext-len"
        ),
        pytest.param(b"\xa0" + PLAIN[1:] + b"\x00", "padding", id="zero-count"),
        pytest.param(b"\xa0" + PLAIN[1:] + b"\x06", "padding", id="count-into-header"),
        pytest.param(b"\xa0" + PLAIN[1:12], "padding", id="header-only"),
    ],
)
def test_parse_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError) as caught:
        parse_rtp(data)
    assert caught.value.reason == reason
    assert str(caught.value) == reason


def test_padding_may_take_the_whole_payload_but_not_the_header() -> None:
    packet = b"\xa0" + PLAIN[1:12] + b"\x00\x00\x00\x04"
    assert parse_rtp(packet).payload == b""
    with pytest.raises(RtpError, match="padding"):
        parse_rtp(b"\xa0" + PLAIN[1:12] + b"\x00\x00\x00\x05")


def test_packet_is_frozen_and_compares_by_value() -> None:
    packet = parse_rtp(PLAIN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        packet.sequence = 2  # type: ignore[misc]
    assert packet == RtpPacket(False, 0, 1, 160, 0xDEADBEEF, b"\xff\xfe\x7f\x00")
    assert hash(packet) == hash(RtpPacket(False, 0, 1, 160, 0xDEADBEEF, b"\xff\xfe\x7f\x00"))
    assert dataclasses.replace(packet, marker=True).marker


def test_build_vectors() -> None:
    assert build_rtp(0, 1, 160, 0xDEADBEEF, b"\xff\xfe\x7f\x00") == PLAIN
    assert build_rtp(101, 12345, 123456789, 1, b"", marker=True)[:2] == b"\x80\xe5"
    # sequence and timestamp are taken modulo their width, so callers count freely
    wrapped = parse_rtp(build_rtp(8, 0x10001, (1 << 32) + 7, 9, b"x"))
    assert (wrapped.sequence, wrapped.timestamp) == (1, 7)


@pytest.mark.parametrize("payload_type", [-1, 128, 200])
def test_build_refuses_a_payload_type_that_would_not_fit(payload_type: int) -> None:
    with pytest.raises(ValueError, match="payload type"):
        build_rtp(payload_type, 0, 0, 0, b"")


@pytest.mark.parametrize(
    ("data", "rtcp"),
    [
        (bytes.fromhex("80c80006"), True),  # SR
        (bytes.fromhex("81c90007"), True),  # RR with one block
        (bytes.fromhex("81ca0003"), True),  # SDES
        (bytes.fromhex("80df0000"), True),  # 223: the top of RFC 5761's range
        (bytes.fromhex("80c00000"), True),  # 192: the bottom (marker and payload type 64)
        (bytes.fromhex("80bf0000"), False),  # 191: marker and payload type 63
        (bytes.fromhex("80e00000"), False),  # 224: marker and payload type 96
        (PLAIN, False),
        (WITH_CSRC, False),  # marker and telephone-event 101
        (b"\x80", False),
        (b"", False),
    ],
)
def test_is_rtcp(data: bytes, rtcp: bool) -> None:
    assert is_rtcp(data) is rtcp


def test_serial_deltas_wrap() -> None:
    assert seq_delta(0, 65535) == 1
    assert seq_delta(65535, 0) == -1
    assert seq_delta(0x8000, 0) == -0x8000
    assert ts_delta(5, 0xFFFFFFFF) == 6
    assert ts_delta(0xFFFFFFFF, 5) == -6


# -- Hypothesis ----------------------------------------------------------------------------------
def outcome(data: bytes) -> RtpPacket | str:
    try:
        return parse_rtp(data)
    except RtpError as exc:
        return exc.reason


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_rtp_error(data: bytes) -> None:
    result = outcome(data)
    if isinstance(result, str):
        assert result in {"short", "version", "csrc", "extension", "padding"}
    else:
        assert len(result.payload) <= len(data) - 12
        assert 0 <= result.payload_type <= 127


@given(st.binary(min_size=12, max_size=200))
def test_version_2_bytes_parse_or_raise_rtp_error(data: bytes) -> None:
    # The same, with version 2 forced so that the length checks are what is exercised.
    result = outcome(bytes((0x80 | (data[0] & 0x3F),)) + data[1:])
    assert not isinstance(result, str) or result in {"csrc", "extension", "padding"}


packets = st.builds(
    RtpPacket,
    marker=st.booleans(),
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=400),
)


@given(packets)
def test_build_then_parse_is_identity(packet: RtpPacket) -> None:
    data = build_rtp(
        packet.payload_type,
        packet.sequence,
        packet.timestamp,
        packet.ssrc,
        packet.payload,
        packet.marker,
    )
    assert parse_rtp(data) == packet
    assert not is_rtcp(data) or 64 <= packet.payload_type <= 95


@given(
    packets,
    st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    st.none() | st.binary(max_size=40).map(lambda b: b + bytes(-len(b) % 4)),
    st.integers(0, 255),
)
def test_csrcs_extension_and_padding_are_not_payload(
    packet: RtpPacket, csrcs: list[int], extension: bytes | None, padding: int
) -> None:
    first = 0x80 | len(csrcs) | (0x10 if extension is not None else 0) | (0x20 if padding else 0)
    second = packet.payload_type | (0x80 if packet.marker else 0)
    data = struct.pack("!BBHII", first, second, packet.sequence, packet.timestamp, packet.ssrc)
    data += b"".join(struct.pack("!I", c) for c in csrcs)
    if extension is not None:
        data += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    data += packet.payload
    if padding:
        data += bytes(padding - 1) + bytes((padding,))
    assert parse_rtp(data) == packet
