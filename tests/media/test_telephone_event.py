"""RFC 4733 telephone events: the payload, and one key per key press through loss, repeats and
reordering (table tests by hand, then Hypothesis over whole key sequences)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.media.rtp import build_rtp, parse_rtp
from bridge.media.telephone_event import (
    KEYS,
    OLD_WINDOW,
    SEGMENT,
    DtmfReceiver,
    TelephoneEvent,
    TelephoneEventError,
    decode_event,
    encode_event,
)

PT = 101


# -- the payload (§2.3) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "event"),
    [
        # key 5, volume 10 (-10 dBm0), 20 ms so far at 8 kHz
        (bytes.fromhex("050a00a0"), TelephoneEvent(5, False, 10, 160)),
        # its end: E set, 100 ms
        (bytes.fromhex("058a0320"), TelephoneEvent(5, True, 10, 800)),
        # the reserved R bit is ignored (§2.3.3)
        (bytes.fromhex("0b4a00a0"), TelephoneEvent(11, False, 10, 160)),
        # the largest values; flash (16) is an event but not a key
        (bytes.fromhex("10ffffff"), TelephoneEvent(16, True, 63, 0xFFFF)),
        # trailing octets are not an event of their own
        (bytes.fromhex("0c0a00a0") + b"\x00\x00", TelephoneEvent(12, False, 10, 160)),
    ],
)
def test_decode_event(payload: bytes, event: TelephoneEvent) -> None:
    assert decode_event(payload) == event


@pytest.mark.parametrize("payload", [b"", b"\x05", b"\x05\x0a\x00"])
def test_decode_refuses_short_payloads(payload: bytes) -> None:
    assert decode_event(payload) == TelephoneEventError("short")


def test_keys_are_the_first_sixteen_codes() -> None:
    assert [TelephoneEvent(code, False, 0, 0).key for code in range(18)] == [*KEYS, None, None]
    assert KEYS == "0123456789*#ABCD"


@given(st.builds(TelephoneEvent, st.integers(0, 255), st.booleans(), st.integers(0, 63),
                 st.integers(0, 0xFFFF)))  # fmt: skip
def test_encode_then_decode_is_identity(event: TelephoneEvent) -> None:
    assert decode_event(encode_event(event)) == event


@given(st.binary(max_size=12))
def test_any_payload_decodes_or_is_an_error_value(payload: bytes) -> None:
    result = decode_event(payload)
    assert isinstance(result, TelephoneEvent) == (len(payload) >= 4)


# -- the receiver, by hand ------------------------------------------------------------------------
def start(code: int, duration: int = 160) -> TelephoneEvent:
    return TelephoneEvent(code, False, 10, duration)


def end(code: int, duration: int = 800) -> TelephoneEvent:
    return TelephoneEvent(code, True, 10, duration)


def feed(receiver: DtmfReceiver, packets: list[tuple[TelephoneEvent, int, bool]]) -> list[str]:
    keys = []
    for event, timestamp, marker in packets:
        key = receiver.receive(event, timestamp, marker, ssrc=7)
        if key is not None:
            keys.append(key)
    return keys


def press(code: int, timestamp: int) -> list[tuple[TelephoneEvent, int, bool]]:
    """One key press as §2.5.1 sends it: marker on the first, updates, the end three times."""
    return [
        (start(code, 160), timestamp, True),
        (start(code, 320), timestamp, False),
        (start(code, 480), timestamp, False),
        *[(end(code, 640), timestamp, False)] * 3,
    ]


def test_one_press_is_one_key() -> None:
    assert feed(DtmfReceiver(), press(5, 1000)) == ["5"]


def test_a_press_whose_start_was_lost_is_still_one_key() -> None:
    assert feed(DtmfReceiver(), press(5, 1000)[3:]) == ["5"]
    assert feed(DtmfReceiver(), press(5, 1000)[2:]) == ["5"]


def test_the_same_key_twice_is_two_keys() -> None:
    assert feed(DtmfReceiver(), press(1, 1000) + press(1, 2000)) == ["1", "1"]


def test_a_late_end_packet_of_the_previous_key_is_ignored() -> None:
    late = (end(1), 1000, False)
    packets = press(1, 1000) + press(2, 2000)[:2] + [late] + press(2, 2000)[2:] + [late]
    assert feed(DtmfReceiver(), packets) == ["1", "2"]


def test_timestamps_wrap_around() -> None:
    last = 0xFFFFFF00
    packets = press(10, last) + press(11, (last + 800) & 0xFFFFFFFF) + [(end(10), last, False)]
    assert feed(DtmfReceiver(), packets) == ["*", "#"]


def test_a_long_event_in_segments_is_one_key() -> None:
    # RFC 4733 §2.5.1.3: the duration stops at 0xFFFF, the next segment has the timestamp plus
    # 0xFFFF and no marker, and only the last segment ends.
    t = 0xFFFF0000
    packets = [
        (start(0, 160), t, True),
        (start(0, SEGMENT), t, False),
        (start(0, 160), (t + SEGMENT) & 0xFFFFFFFF, False),
        (start(0, SEGMENT), (t + SEGMENT) & 0xFFFFFFFF, False),
        # the third segment's first packets are lost, and the fourth is the last
        (end(0, 4000), (t + 3 * SEGMENT) & 0xFFFFFFFF, False),
        (end(0, 4000), (t + 3 * SEGMENT) & 0xFFFFFFFF, False),
    ]
    assert feed(DtmfReceiver(), packets) == ["0"]


def test_a_duration_that_wraps_on_one_timestamp_is_one_key() -> None:
    # RFC 2833-era senders keep the timestamp and let the duration wrap
    packets = [(start(9, d & 0xFFFF), 50, d == 160) for d in range(160, 100_000, 160)]
    assert feed(DtmfReceiver(), [*packets, (end(9, 5), 50, False)]) == ["9"]


def test_a_new_press_of_the_same_key_a_segment_later_is_a_new_key() -> None:
    packets = [*press(3, 0), (start(3), SEGMENT, True), (end(3), SEGMENT, False)]
    assert feed(DtmfReceiver(), packets) == ["3", "3"]


def test_a_packet_far_behind_is_a_new_timestamp_base() -> None:
    packets = press(4, 10 * OLD_WINDOW) + press(6, 1000)
    assert feed(DtmfReceiver(), packets) == ["4", "6"]


def test_a_new_ssrc_starts_afresh() -> None:
    receiver = DtmfReceiver()
    assert receiver.receive(start(7), 1000, True, ssrc=1) == "7"
    assert receiver.receive(end(7), 1000, False, ssrc=1) is None
    assert receiver.receive(start(8), 1000, True, ssrc=2) == "8"  # re-INVITE: same timestamp


def test_events_that_are_not_keys_report_nothing_but_are_tracked() -> None:
    packets = [*press(16, 1000), (end(16), 1000, False), *press(2, 2000)]
    assert feed(DtmfReceiver(), packets) == ["2"]


def test_receive_packet_decodes_and_counts_bad_payloads() -> None:
    receiver = DtmfReceiver()
    good = parse_rtp(build_rtp(PT, 1, 8000, 99, bytes.fromhex("0b0a00a0"), marker=True))
    assert receiver.receive_packet(good) == "#"
    assert receiver.receive_packet(good) is None
    bad = parse_rtp(build_rtp(PT, 2, 8000, 99, b"\x0b"))
    assert receiver.receive_packet(bad) is None
    assert receiver.errors == 1


# -- the receiver, by Hypothesis ------------------------------------------------------------------
@dataclass(frozen=True)
class Press:
    code: int
    duration: int  # timestamp units; more than SEGMENT is a long-duration event
    gap: int  # from this event's end to the next one's start
    step: int  # duration update interval


codes = st.integers(0, 17)  # 16 and 17 are events but not keys
gaps = st.integers(0, 4000)
presses = st.one_of(
    st.builds(Press, codes, st.integers(1, 2000), gaps, st.sampled_from([160, 320, 2000])),
    # long-duration events, in up to four segments; fewer updates, to keep the example small
    st.builds(Press, codes, st.integers(SEGMENT - 200, 3 * SEGMENT + 500), gaps,
              st.sampled_from([1600, 16000])),
)  # fmt: skip
Packet = tuple[TelephoneEvent, int, bool]


def sent(press: Press, timestamp: int) -> list[list[Packet]]:
    """The packets §2.5.1 sends for one press, segment by segment; the end packet once (the
    caller repeats it)."""
    segments: list[list[Packet]] = []
    remaining, first = press.duration, True
    while True:
        length = min(remaining, SEGMENT)
        last = remaining <= SEGMENT
        packets: list[Packet] = []
        elapsed = 0
        while elapsed < length:
            elapsed = min(elapsed + press.step, length)
            done = last and elapsed == length
            event = TelephoneEvent(press.code, done, 10, elapsed)
            packets.append((event, timestamp & 0xFFFFFFFF, first))
            first = False
        segments.append(packets)
        if last:
            return segments
        remaining -= SEGMENT
        timestamp += SEGMENT


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_keys_out_equal_presses_in_through_loss_repeats_and_late_copies(
    data: st.DataObject,
) -> None:
    sequence = data.draw(st.lists(presses, max_size=8), label="presses")
    timestamp = data.draw(st.integers(0, 0xFFFFFFFF), label="first timestamp")
    stream: list[Packet] = []
    expected: list[str] = []
    previous_end: Packet | None = None
    for press in sequence:
        segments = sent(press, timestamp)
        timestamp += press.duration + press.gap
        if data.draw(st.integers(0, 9)) == 0:  # every packet of this press is lost
            previous_end = None
            continue
        if press.code < 16:
            expected.append(KEYS[press.code])
        for index, packets in enumerate(segments):
            for packet in packets:
                if packet[0].end:  # the end, repeated; at least one copy gets through
                    stream += [packet] * data.draw(st.integers(1, 5))
                    previous_end = packet
                elif not data.draw(st.booleans()):  # updates and starts may all be lost
                    stream.append(packet)
                    if index == 0 and previous_end is not None and data.draw(st.booleans()):
                        stream.append(previous_end)  # the previous press's end, late
                        previous_end = None
    assert feed(DtmfReceiver(), stream) == expected
