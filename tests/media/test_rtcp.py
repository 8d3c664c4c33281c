"""RFC 3550 RTCP: hand-built compound packets, every A.2 check, and our RR/SR byte for byte."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.media.rtcp import (
    BYE,
    NTP_UNIX_OFFSET,
    RR,
    SDES,
    SR,
    Compound,
    Report,
    ReportBlock,
    RtcpError,
    SenderInfo,
    build_receiver_report,
    build_sender_report,
    ntp_middle,
    ntp_timestamp,
    parse_rtcp,
)
from bridge.media.rtp import is_rtcp

REASONS = {"short", "length", "version", "padding", "first", "count", "sdes", "bye"}
BLOCK = ReportBlock(0xCAFE, 25, 3, 0x1_0005, 40, 0x12345678, 0x00010000)

# An RR from 0x01020304 with one block about 0xCAFE (fraction 25/256, 3 lost, highest 65541 —
# one wraparound — jitter 40, LSR, DLSR one second), then SDES with CNAME "a@b".
RR_WIRE = (
    bytes.fromhex("81c90007 01020304")
    + bytes.fromhex("0000cafe 19000003 00010005 00000028 12345678 00010000")
    + bytes.fromhex("81ca0003 01020304 0103") + b"a@b" + b"\x00\x00\x00"
)  # fmt: skip


def header(count: int, packet_type: int, body: bytes, padding: bool = False) -> bytes:
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, packet_type, len(body) // 4)


def packet(count: int, packet_type: int, body: bytes) -> bytes:
    return header(count, packet_type, body) + body


def test_receiver_report_byte_for_byte() -> None:
    assert build_receiver_report(0x01020304, "a@b", BLOCK) == RR_WIRE


def test_parse_receiver_report() -> None:
    assert parse_rtcp(RR_WIRE) == Compound(
        packet_types=(RR, SDES),
        reports=(Report(0x01020304, None, (BLOCK,)),),
        cnames=((0x01020304, "a@b"),),
        byes=(),
    )
    assert parse_rtcp(RR_WIRE).block_count == 1
    assert is_rtcp(RR_WIRE)


def test_sender_report_round_trip() -> None:
    sender = SenderInfo(ntp_timestamp(1_700_000_000.25), 123_456, 50, 8000)
    wire = build_sender_report(7, "bridge@example.com", sender, BLOCK)
    assert wire[:4] == bytes.fromhex("81c8000c")  # SR, one block, 13 words
    assert parse_rtcp(wire).reports == (Report(7, sender, (BLOCK,)),)
    bare = parse_rtcp(build_sender_report(7, "x", sender))
    assert bare.reports == (Report(7, sender, ()),) and bare.block_count == 0


@pytest.mark.parametrize("cname", ["", "x" * 256, "é" * 128])
def test_cname_must_fit_one_octet_of_length(cname: str) -> None:
    with pytest.raises(ValueError, match="CNAME"):
        build_receiver_report(1, cname)


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 255])
def test_sdes_is_padded_to_32_bits_with_at_least_one_null(length: int) -> None:
    wire = build_receiver_report(1, "c" * length)
    assert len(wire) % 4 == 0
    assert parse_rtcp(wire).cnames == ((1, "c" * length),)


def only_block(block: ReportBlock) -> ReportBlock:
    (parsed,) = parse_rtcp(build_receiver_report(9, "c", block)).reports[0].blocks
    return parsed


def test_counters_are_clamped_and_wrapped_as_the_fields_allow() -> None:
    parsed = only_block(ReportBlock(1, 300, -(10**9), 2**40 + 5, 2**33, 0, 0))
    assert (parsed.fraction_lost, parsed.cumulative_lost) == (255, -0x800000)
    assert (parsed.highest_sequence, parsed.jitter) == (5, 0)
    parsed = only_block(ReportBlock(1, -1, 10**9, 0, 0))
    assert (parsed.fraction_lost, parsed.cumulative_lost) == (0, 0x7FFFFF)


def test_bye_app_and_unknown_packets_are_read_or_skipped() -> None:
    bye = packet(2, BYE, struct.pack("!II", 5, 6) + b"\x03bye")  # two SSRCs and a reason
    app = packet(0, 204, struct.pack("!I", 5) + b"name" + b"data")
    feedback = packet(1, 205, struct.pack("!II", 5, 6))
    parsed = parse_rtcp(RR_WIRE + app + feedback + bye)
    assert parsed.packet_types == (RR, SDES, 204, 205, BYE)
    assert parsed.byes == (5, 6)


def test_padding_on_the_last_packet() -> None:
    body = struct.pack("!I", 5)
    padded = header(1, BYE, body + b"\x00\x00\x00\x04", padding=True) + body + b"\x00\x00\x00\x04"
    assert parse_rtcp(RR_WIRE + padded).byes == (5,)


def replace(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "short", id="empty"),
        pytest.param(RR_WIRE[:4], "short", id="header-only"),
        pytest.param(RR_WIRE + b"\x00", "length", id="not-words"),
        pytest.param(RR_WIRE[:-4], "length", id="truncated"),
        pytest.param(RR_WIRE + b"\x00" * 4, "version", id="trailing-zeros"),
        pytest.param(replace(RR_WIRE, 0, b"\x41"), "version", id="first-version"),
        pytest.param(replace(RR_WIRE, 32, b"\xc1"), "version", id="second-version"),
        pytest.param(replace(RR_WIRE, 0, b"\xa1"), "padding", id="padded-first"),
        pytest.param(RR_WIRE[32:] + RR_WIRE[:32], "first", id="sdes-first"),
        pytest.param(packet(0, BYE, b"\x00" * 4) + RR_WIRE, "first", id="bye-first"),
        pytest.param(replace(RR_WIRE, 0, b"\x82"), "count", id="two-blocks-in-one"),
        pytest.param(replace(RR_WIRE, 2, b"\x00\x0c"), "length", id="lengths-dont-add-up"),
        pytest.param(replace(RR_WIRE, 32, b"\x82"), "sdes", id="two-chunks-in-one"),
        pytest.param(replace(RR_WIRE, 41, b"\x09"), "sdes", id="item-too-long"),
        pytest.param(replace(RR_WIRE, 32, b"\xa1"), "padding", id="padding-count-zero"),
        pytest.param(replace(RR_WIRE, 32, b"\xa1")[:-1] + b"\x0d", "padding", id="padding-too-big"),
        pytest.param(
            replace(RR_WIRE, 32, b"\xa1") + packet(0, BYE, b""), "padding", id="padding-not-last"
        ),
        pytest.param(RR_WIRE + packet(3, BYE, b"\x00" * 8), "bye", id="bye-count"),
    ],
)
def test_parse_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError) as caught:
        parse_rtcp(data)
    assert caught.value.reason == reason


def test_ntp_timestamps() -> None:
    assert ntp_timestamp(0.0) == NTP_UNIX_OFFSET << 32
    assert ntp_timestamp(1.5) == ((NTP_UNIX_OFFSET + 1) << 32) | 0x8000_0000
    assert ntp_middle(0x0123_4567_89AB_CDEF) == 0x4567_89AB


# -- Hypothesis -----------------------------------------------------------------------------------
def outcome(data: bytes) -> Compound | str:
    try:
        return parse_rtcp(data)
    except RtcpError as exc:
        return exc.reason


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_rtcp_error(data: bytes) -> None:
    result = outcome(data)
    assert not isinstance(result, str) or result in REASONS


@given(st.integers(0, len(RR_WIRE) - 1), st.integers(0, 255))
def test_any_corrupted_octet_parses_or_raises_rtcp_error(offset: int, value: int) -> None:
    result = outcome(replace(RR_WIRE, offset, bytes((value,))))
    assert not isinstance(result, str) or result in REASONS


blocks = st.builds(
    ReportBlock,
    ssrc=st.integers(0, 0xFFFFFFFF),
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=st.integers(0, 0xFFFFFFFF),
    jitter=st.integers(0, 0xFFFFFFFF),
    lsr=st.integers(0, 0xFFFFFFFF),
    dlsr=st.integers(0, 0xFFFFFFFF),
)
cnames = st.text(min_size=1, max_size=60)
senders = st.builds(
    SenderInfo,
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)


@given(st.integers(0, 0xFFFFFFFF), cnames, st.none() | blocks, st.none() | senders)
def test_build_then_parse_is_identity(
    ssrc: int, cname: str, block: ReportBlock | None, sender: SenderInfo | None
) -> None:
    if sender is None:
        wire = build_receiver_report(ssrc, cname, block)
    else:
        wire = build_sender_report(ssrc, cname, sender, block)
    parsed = parse_rtcp(wire)
    assert parsed.reports == (Report(ssrc, sender, () if block is None else (block,)),)
    assert parsed.cnames == ((ssrc, cname),)
    assert parsed.packet_types == (RR if sender is None else SR, SDES)
