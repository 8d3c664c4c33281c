"""One call's relay state, sans-IO: latching, keys, the gates, normalisation, prompts, bad input."""

from __future__ import annotations

import itertools
import struct

from hypothesis import given
from hypothesis import strategies as st

from bridge.media.g711 import ULAW
from bridge.media.rtp import build_rtp, parse_rtp, seq_delta
from bridge.media.session import KEEPALIVE, LATCH_PACKETS, RELATCH_AFTER, CallMedia, Ids
from bridge.media.telephone_event import TelephoneEvent, encode_event

PHONE = ("192.0.2.10", 4000)
MEETING = ("127.0.0.1", 40000)
IDS = Ids(0x1111, 65530, 0xFFFFFF00, 0x2222, 100, 1000)


def call(*, send: bool = True, hear: bool = True, meeting: bool = True) -> CallMedia:
    media = CallMedia(
        codec="PCMU",
        payload_type=0,
        event_payload_type=101,
        phone=PHONE,
        phone_rtcp=(PHONE[0], PHONE[1] + 1),
        ids=IDS,
        cname="test@bridge",
    )
    if meeting:
        media.connect_meeting(MEETING, "PCMU", 0)
    media.send_open, media.hear_open = send, hear
    return media


class Phone:
    """An RTP sender: 8 kHz G.711, ``size`` bytes a packet."""

    def __init__(self, ssrc: int = 0xABC, sequence: int = 7, timestamp: int = 5000) -> None:
        self.ssrc, self.sequence, self.timestamp = ssrc, sequence, timestamp
        self.now = 10.0

    def audio(self, size: int = 160, fill: int = 0x10) -> bytes:
        packet = build_rtp(0, self.sequence, self.timestamp, self.ssrc, bytes([fill]) * size)
        self.sequence += 1
        self.timestamp += size
        self.now += size / 8000
        return packet

    def event(self, key: int, *, end: bool, duration: int, marker: bool = False) -> bytes:
        payload = encode_event(TelephoneEvent(key, end, 10, duration))
        packet = build_rtp(101, self.sequence, self.timestamp, self.ssrc, payload, marker)
        self.sequence += 1
        return packet


def test_the_sdp_address_is_latched_at_once_and_its_audio_reaches_the_meeting() -> None:
    media, phone = call(), Phone()
    out = media.from_phone(phone.audio(), PHONE, phone.now)
    assert len(out) == 1 and media.latched == PHONE
    packet = parse_rtp(out[0])
    assert (packet.ssrc, packet.sequence, packet.timestamp) == (0x1111, 65530, 0xFFFFFF00)
    assert packet.payload == bytes([0x10]) * 160 and packet.marker


def test_another_source_is_latched_after_a_few_packets_in_sequence() -> None:
    media, phone = call(), Phone()
    nat = ("198.51.100.7", 61000)
    sent = [media.from_phone(phone.audio(), nat, phone.now) for _ in range(LATCH_PACKETS + 2)]
    assert [len(out) for out in sent] == [0] * (LATCH_PACKETS - 1) + [1, 1, 1]
    assert media.latched == nat and media.phone_target == nat  # we answer where it sends from
    assert media.counters.stranger == LATCH_PACKETS - 1 and media.counters.latches == 1


def test_a_stranger_cannot_take_a_live_call_but_a_silent_one_is_relatched() -> None:
    media, phone, stranger = call(), Phone(), Phone(ssrc=0xBAD)
    media.from_phone(phone.audio(), PHONE, phone.now)
    intruder = ("203.0.113.66", 5000)
    for _ in range(10):
        assert media.from_phone(stranger.audio(), intruder, phone.now) == []
    assert media.latched == PHONE and media.counters.stranger == 10
    # The phone moves (a NAT rebinding) and goes silent at its old address.
    later = phone.now + RELATCH_AFTER + 0.1
    moved = ("192.0.2.10", 4100)
    outs = [media.from_phone(phone.audio(), moved, later + i * 0.02) for i in range(LATCH_PACKETS)]
    assert outs[-1] and media.latched == moved


def test_a_new_ssrc_from_the_latched_source_passes_after_probation() -> None:
    media, phone = call(), Phone()
    media.from_phone(phone.audio(), PHONE, phone.now)
    restarted = Phone(ssrc=0xDEF, sequence=40000, timestamp=123)
    outs = [media.from_phone(restarted.audio(), PHONE, phone.now + 0.02 * i) for i in range(4)]
    assert [len(out) for out in outs] == [0] * (LATCH_PACKETS - 1) + [1] * (5 - LATCH_PACKETS)


def test_keys_one_per_event_never_forwarded() -> None:
    media, phone = call(), Phone()
    media.from_phone(phone.audio(), PHONE, phone.now)
    before = media.counters.to_meeting_packets
    packets = [phone.event(11, end=False, duration=160, marker=True)]
    packets += [phone.event(11, end=False, duration=320), phone.event(11, end=False, duration=480)]
    packets += [phone.event(11, end=True, duration=640) for _ in range(3)]  # the end, three times
    phone.timestamp += 800
    packets += [phone.event(6, end=True, duration=400) for _ in range(3)]  # the start was lost
    for packet in packets:
        assert media.from_phone(packet, PHONE, phone.now) == []
    assert media.keys == ["#", "6"] and media.counters.keys == 2
    assert media.counters.to_meeting_packets == before


def test_while_the_gate_is_closed_nothing_reaches_the_meeting() -> None:
    media, phone = call(send=False), Phone()
    for _ in range(50):
        assert media.from_phone(phone.audio(), PHONE, phone.now) == []
    assert media.counters.muted == 50 and media.counters.to_meeting_packets == 0
    media.send_open = True
    assert media.from_phone(phone.audio(), PHONE, phone.now)


def test_the_lobby_hears_nothing_of_the_meeting() -> None:
    media = call(hear=False)
    meeting = Phone(ssrc=0x7777)
    assert media.from_meeting(meeting.audio(), 1.0) == []
    media.hear_open = True
    (packet,) = media.from_meeting(meeting.audio(), 1.02)
    assert parse_rtp(packet).ssrc == 0x2222  # our phone-leg stream, not the mixer's
    assert media.counters.paused == 1


def test_any_ptime_in_twenty_ms_out_continuous_across_a_reinvite() -> None:
    media, phone = call(), Phone()
    out = []
    for size in (80, 80, 240, 240, 240, 320, 80):
        out += media.from_phone(phone.audio(size), PHONE, phone.now)
    # The phone re-INVITEs to a new port and restarts its stream.
    moved = (PHONE[0], 4500)
    media.renegotiate(
        codec="PCMU", payload_type=0, event_payload_type=101, phone=moved, phone_rtcp=None
    )
    restarted = Phone(ssrc=0x999, sequence=1, timestamp=77)
    restarted.now = phone.now
    for _ in range(10):
        out += media.from_phone(restarted.audio(240), moved, restarted.now)
    packets = [parse_rtp(p) for p in out]
    assert all(len(p.payload) == 160 for p in packets)
    assert all(p.ssrc == 0x1111 for p in packets)
    assert all(seq_delta(b.sequence, a.sequence) == 1 for a, b in itertools.pairwise(packets))
    assert all(
        ((b.timestamp - a.timestamp) & 0xFFFFFFFF) >= 160 for a, b in itertools.pairwise(packets)
    )


def test_a_meeting_leg_that_carried_nothing_gets_a_keepalive() -> None:
    media = call(send=False)
    keepalive, _ = media.housekeeping(0.0, 1.7e9)
    assert keepalive is not None and parse_rtp(keepalive).payload == bytes([0xFF]) * 160
    assert media.housekeeping(KEEPALIVE / 2, 1.7e9)[0] is None
    assert media.housekeeping(KEEPALIVE + 0.01, 1.7e9)[0] is not None


def test_a_prompt_plays_to_the_phone_in_place_of_the_meeting() -> None:
    media, meeting = call(), Phone(ssrc=0x7777)
    frames = [bytes([0x20]) * 160] * 3
    media.play(frames)
    assert media.from_meeting(meeting.audio(), 1.0) == []  # paused while the prompt plays
    heard = [media.tick(1.0 + 0.02 * i) for i in range(5)]
    assert [len(h) for h in heard] == [1, 1, 1, 0, 0] and not media.prompting
    assert media.from_meeting(meeting.audio(), 1.2)  # the meeting again


def test_codecs_differing_on_the_two_legs_are_translated() -> None:
    media, phone = call(), Phone()
    media.connect_meeting(MEETING, "PCMA", 8)
    (out,) = media.from_phone(phone.audio(fill=0xFF), PHONE, phone.now)  # mu-law silence
    packet = parse_rtp(out)
    assert packet.payload_type == 8 and packet.payload == bytes([0xD5]) * 160  # A-law silence
    assert ULAW.silence == 0xFF


@given(st.binary(max_size=2000), st.sampled_from([PHONE, ("203.0.113.1", 9)]))
def test_any_datagram_is_relayed_or_counted_never_raises(
    data: bytes, source: tuple[str, int]
) -> None:
    media = call()
    out = media.from_phone(data, source, 1.0)
    back = media.from_meeting(data, 1.0)
    counted = media.counters
    assert counted.phone_packets == 1 and counted.meeting_packets == 1
    assert all(len(parse_rtp(p).payload) == 160 for p in out + back)


def test_huge_and_non_rtp_datagrams_are_counted() -> None:
    media = call()
    media.from_phone(b"\x80" * 1501, PHONE, 1.0)
    media.from_phone(b"\x40" + b"\x00" * 171, PHONE, 1.0)  # RTP version 1
    media.from_phone(b"hello", PHONE, 1.0)
    media.from_phone(build_rtp(96, 1, 1, 5, b"x" * 160), PHONE, 1.0)  # an unnegotiated type
    counted = media.counters
    assert (counted.too_big, counted.not_rtp, counted.payload_type) == (1, 2, 1)
    assert struct.calcsize("!BBHII") == 12


def is_talking(media: CallMedia) -> bool:
    """Read through a call, so that mypy does not narrow the flag across the relay's updates."""
    return media.talking


def changed(media: CallMedia) -> bool:
    return media.talking_changed


def test_a_phone_speaking_into_the_meeting_is_talking_until_it_stops_or_is_muted() -> None:
    media, phone = call(), Phone()
    loud = bytes(ULAW.from_samples([8000 if i % 2 else -8000 for i in range(160)]))

    def send(payload: bytes, count: int) -> None:
        for _ in range(count):
            packet = build_rtp(0, phone.sequence, phone.timestamp, phone.ssrc, payload)
            phone.sequence += 1
            phone.timestamp += 160
            media.from_phone(packet, PHONE, phone.now)

    send(bytes([0xFF]) * 160, 25)  # half a second of silence
    assert not is_talking(media) and not changed(media)
    send(loud, 10)  # two measurements of speech: talking
    assert is_talking(media) and changed(media)
    media.talking_changed = False
    send(bytes([0xFF]) * 160, 25)  # the last loud measurements leave the window
    assert not is_talking(media) and changed(media)
    send(loud, 10)
    assert is_talking(media)
    media.send_open = False  # muted: what it says reaches nobody
    send(loud, 1)
    assert not is_talking(media)


def test_a_phone_that_stops_sending_stops_talking_at_the_next_housekeeping() -> None:
    media, phone = call(), Phone()
    loud = bytes(ULAW.from_samples([8000 if i % 2 else -8000 for i in range(160)]))
    for _ in range(10):
        packet = build_rtp(0, phone.sequence, phone.timestamp, phone.ssrc, loud)
        phone.sequence += 1
        phone.timestamp += 160
        media.from_phone(packet, PHONE, phone.now)
    assert is_talking(media)
    media.housekeeping(phone.now + 0.1, 1.7e9)
    assert is_talking(media)  # a pause between words
    media.housekeeping(phone.now + 1.0, 1.7e9)
    assert not is_talking(media) and changed(media)
