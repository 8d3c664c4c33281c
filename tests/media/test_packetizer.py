"""The meeting-leg packetizer: any phone packet size in, continuous 20 ms packets out, across gaps,
re-INVITEs and mute. Hand-stepped cases first, then Hypothesis over whole streams."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.media.analysis import mean_power, rms_dbfs, tone_power
from bridge.media.g711 import ALAW, ULAW
from bridge.media.packetizer import CLOCK_RATE, FRAME, RESYNC, Packetizer
from bridge.media.rtp import RtpPacket, parse_rtp, ts_delta

from .audio import tone

SSRC, SEQ, TS = 0x5EED, 1000, 90_000
SILENCE = ULAW.silence


def make(sequence: int = SEQ, timestamp: int = TS) -> Packetizer:
    return Packetizer(
        ssrc=SSRC, sequence=sequence, timestamp=timestamp, payload_type=0, silence=SILENCE
    )


def parsed(wire: list[bytes]) -> list[RtpPacket]:
    packets = [parse_rtp(p) for p in wire]
    assert all(p.ssrc == SSRC and p.payload_type == 0 for p in packets)
    assert all(len(p.payload) == FRAME for p in packets)
    return packets


class Phone:
    """A phone's RTP stream: payloads of ``ptime`` ms of a tone, sent every ``ptime``."""

    def __init__(self, ssrc: int = 77, timestamp: int = 123_456, now: float = 10.0) -> None:
        self.ssrc, self.timestamp, self.now = ssrc, timestamp, now
        self.audio = bytes(i % 255 for i in range(50_000))  # never the silence code, 0xFF
        self.offset = 0

    def send(self, packetizer: Packetizer, size: int, **kw: bool) -> list[RtpPacket]:
        payload = self.audio[self.offset : self.offset + size]
        self.offset += size
        out = packetizer.push(payload, self.timestamp, self.ssrc, self.now, **kw)
        self.skip(size)
        return parsed(out)

    def skip(self, samples: int) -> None:
        """Time passes, ``samples`` of it, whether or not something was sent."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self.now += samples / CLOCK_RATE


# -- by hand --------------------------------------------------------------------------------------
def test_20ms_packets_pass_through_whole() -> None:
    p, phone = make(), Phone()
    first = phone.send(p, 160)
    second = phone.send(p, 160)
    assert [(x.sequence, x.timestamp, x.marker) for x in first + second] == [
        (SEQ, TS, True),  # the first packet starts a talkspurt
        (SEQ + 1, TS + 160, False),
    ]
    assert first[0].payload + second[0].payload == phone.audio[:320]


@pytest.mark.parametrize("size", [80, 240, 320, 100, 1, 161, 1000])
def test_any_size_is_cut_into_20ms(size: int) -> None:
    p, phone = make(), Phone()
    packets = [x for _ in range(20) for x in phone.send(p, size)]
    assert len(packets) == 20 * size // FRAME
    assert b"".join(x.payload for x in packets) == phone.audio[: len(packets) * FRAME]
    assert [x.sequence for x in packets] == list(range(SEQ, SEQ + len(packets)))
    assert [x.timestamp for x in packets] == list(range(TS, TS + FRAME * len(packets), FRAME))
    assert p.sequence == SEQ + len(packets)


def test_30ms_holds_the_remainder_until_the_next_packet() -> None:
    p, phone = make(), Phone()
    assert len(phone.send(p, 240)) == 1
    assert len(phone.send(p, 240)) == 2


def test_a_gap_in_one_source_pads_the_partial_frame_and_jumps_with_marker() -> None:
    p, phone = make(), Phone()
    phone.send(p, 240)  # one packet out, 80 bytes held
    phone.skip(8000)  # one second of silence suppression
    out = phone.send(p, 160)
    assert [(x.sequence, x.timestamp, x.marker) for x in out] == [
        (SEQ + 1, TS + 160, False),  # the held 80 bytes, padded
        (SEQ + 2, TS + 240 + 8000, True),  # the phone's timestamp, moved to ours
    ]
    assert out[0].payload == phone.audio[160:240] + bytes((SILENCE,)) * 80
    assert out[1].payload == phone.audio[240:400]


def test_a_gap_shorter_than_the_rest_of_the_frame_is_filled_inside_it() -> None:
    p, phone = make(), Phone()
    phone.send(p, 80)
    phone.skip(40)  # 5 ms lost
    out = phone.send(p, 80)
    assert [(x.sequence, x.timestamp, x.marker) for x in out] == [(SEQ, TS, True)]
    assert out[0].payload == phone.audio[:80] + bytes((SILENCE,)) * 40 + phone.audio[80:120]
    assert phone.send(p, 120)[0].timestamp == TS + 160  # and the next frame is where it belongs


def test_a_lost_20ms_packet_is_a_timestamp_jump_not_a_sequence_gap() -> None:
    p, phone = make(), Phone()
    phone.send(p, 160)
    phone.skip(160)
    out = phone.send(p, 160)
    assert [(x.sequence, x.timestamp, x.marker) for x in out] == [(SEQ + 1, TS + 320, True)]


def test_a_reinvite_continues_our_stream_after_the_wall_clock_gap() -> None:
    p, phone = make(), Phone()
    phone.send(p, 160)
    phone.send(p, 80)  # 80 bytes held
    # The re-INVITE: new SSRC, sequence and timestamp base; media resumes 0.5 s after it was due
    new = Phone(ssrc=78, timestamp=0xFFFFFF00, now=phone.now + 0.5)
    new.audio = phone.audio[240:]
    out = new.send(p, 160)
    assert [(x.sequence, x.timestamp, x.marker) for x in out] == [
        (SEQ + 1, TS + 160, False),  # the old source's remainder, padded
        (SEQ + 2, TS + 240 + 4000, True),  # 0.5 s after the old audio ended
    ]
    assert out[1].payload == phone.audio[240:400]
    assert new.send(p, 160)[0].timestamp == TS + 240 + 4160  # then by its timestamps


def test_an_immediate_source_change_continues_the_frame() -> None:
    p, phone = make(), Phone()
    phone.send(p, 80)
    new = Phone(ssrc=78, timestamp=5, now=phone.now)
    new.audio = phone.audio[80:]
    out = new.send(p, 80)
    assert [(x.sequence, x.timestamp, x.marker) for x in out] == [(SEQ, TS, True)]
    assert out[0].payload == phone.audio[:160]


def test_a_restarted_timestamp_base_in_one_ssrc_follows_the_wall_clock() -> None:
    p, phone = make(), Phone()
    phone.send(p, 160)
    phone.timestamp = (phone.timestamp + 3_000_000) & 0xFFFFFFFF  # far from the 20 ms that passed
    out = phone.send(p, 160)
    assert [(x.sequence, x.timestamp, x.marker) for x in out] == [(SEQ + 1, TS + 160, True)]
    assert p.resyncs == 1


def test_late_and_duplicate_packets_are_dropped() -> None:
    p, phone = make(), Phone()
    phone.send(p, 160)
    payload, timestamp = phone.audio[:160], phone.timestamp
    phone.send(p, 160)
    assert p.push(payload, (timestamp - 160) & 0xFFFFFFFF, phone.ssrc, phone.now) == []  # dup
    assert p.push(payload, timestamp, phone.ssrc, phone.now) == []  # late by one packet
    assert p.late == 2
    assert phone.send(p, 160)[0].sequence == SEQ + 2


def test_the_phone_marker_is_passed_on() -> None:
    p, phone = make(), Phone()
    phone.send(p, 160)
    assert phone.send(p, 160, marker=True)[0].marker


def test_silence_continues_the_stream_and_later_audio_does_not_count_the_gap_twice() -> None:
    p, phone = make(), Phone()
    phone.send(p, 240)  # 80 bytes held
    padded = parse_rtp(p.silence())
    assert (padded.sequence, padded.timestamp, padded.marker) == (SEQ + 1, TS + 160, False)
    assert padded.payload == phone.audio[160:240] + bytes((SILENCE,)) * 80
    fill = [parse_rtp(p.silence()) for _ in range(49)]  # the phone is muted for a second
    assert [x.sequence for x in fill] == list(range(SEQ + 2, SEQ + 51))
    assert [x.timestamp for x in fill] == list(range(TS + 320, TS + 320 + 49 * 160, 160))
    assert all(x.payload == bytes((SILENCE,)) * 160 for x in fill)
    phone.skip(8000)  # it unmutes a second after its audio ended
    out = phone.send(p, 160)
    # where the phone's timestamp puts it (TS + 240 + 8000), 80 past the end of the silence
    assert [(x.sequence, x.timestamp, x.marker) for x in out] == [(SEQ + 51, TS + 8240, True)]
    # and when the silence ran past it, right after the silence
    assert parse_rtp(p.silence()).timestamp == TS + 8400
    phone.skip(80)
    out = phone.send(p, 160)
    assert [(x.sequence, x.timestamp, x.marker) for x in out] == [(SEQ + 53, TS + 8560, False)]


def test_audio_pushed_back_by_silence_keeps_its_shift_across_later_gaps() -> None:
    p, phone = make(), Phone()
    phone.send(p, 160)
    p.silence()  # sent while the phone's next packet was still on its way
    assert [x.timestamp for x in phone.send(p, 160)] == [TS + 320]  # 160 later than its own
    phone.skip(800)
    assert [x.timestamp for x in phone.send(p, 160)] == [TS + 320 + 160 + 800]


def test_a_tone_in_30ms_packets_is_the_same_tone_in_20ms_packets() -> None:
    p, phone = make(), Phone()
    phone.audio = tone(ULAW, 1000, 4800, level_db=-10)
    payload = b"".join(x.payload for _ in range(20) for x in phone.send(p, 240))
    assert payload == phone.audio
    samples = ULAW.samples(payload)
    assert rms_dbfs(samples) == pytest.approx(-13.0, abs=0.3)
    assert tone_power(samples, 1000, CLOCK_RATE) / mean_power(samples) > 0.95


def test_flush_sends_the_partial_frame_once() -> None:
    p, phone = make(), Phone()
    phone.send(p, 100)
    (wire,) = p.flush()
    assert parse_rtp(wire).payload == phone.audio[:100] + bytes((SILENCE,)) * 60
    assert p.flush() == []


def test_a_law_silence_and_payload_type() -> None:
    p = Packetizer(ssrc=1, sequence=0, timestamp=0, payload_type=8, silence=ALAW.silence)
    packet = parse_rtp(p.silence())
    assert (packet.payload_type, packet.payload) == (8, b"\xd5" * 160)


def test_sequence_and_timestamp_wrap() -> None:
    p, phone = make(sequence=0xFFFF, timestamp=0xFFFFFF60), Phone()
    packets = [x for _ in range(3) for x in phone.send(p, 160)]
    assert [x.sequence for x in packets] == [0xFFFF, 0, 1]
    assert [x.timestamp for x in packets] == [0xFFFFFF60, 0, 160]
    assert (p.sequence, p.timestamp) == (2, 320)


# -- Hypothesis -----------------------------------------------------------------------------------
sizes = st.lists(st.one_of(st.sampled_from([80, 160, 240, 320]), st.integers(1, 500)), max_size=40)
starts = st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
audio = st.binary(min_size=1, max_size=500).map(lambda b: b.replace(b"\xff", b"\x00"))


def check_numbering(packets: list[RtpPacket], sequence: int, timestamp: int) -> None:
    """Consecutive sequence numbers from ``sequence``; timestamps from ``timestamp``, +160 per
    packet, or more after a marker; all modulo their width."""
    for index, packet in enumerate(packets):
        assert packet.sequence == (sequence + index) & 0xFFFF
        step = ts_delta(packet.timestamp, timestamp)
        if index and not packet.marker:
            assert step == FRAME
        assert step >= (FRAME if index else 0)
        timestamp = packet.timestamp


@given(sizes, starts)
def test_contiguous_audio_comes_out_byte_for_byte(
    chunks: list[int], start: tuple[int, int]
) -> None:
    sequence, timestamp = start
    p, phone = make(sequence, timestamp), Phone(timestamp=0xFFFFF000)
    phone.audio = bytes(range(256)) * 40  # distinct from silence except 0xFF
    packets = [x for size in chunks for x in phone.send(p, size)]
    sent = phone.audio[: sum(chunks)]
    assert b"".join(x.payload for x in packets) == sent[: len(packets) * FRAME]
    check_numbering(packets, sequence, timestamp)
    assert [x.marker for x in packets] == [i == 0 for i in range(len(packets))]
    tail = parsed(p.flush())
    assert b"".join(x.payload for x in packets + tail) == sent + bytes((SILENCE,)) * (
        -len(sent) % FRAME
    )
    check_numbering(packets + tail, sequence, timestamp)


@dataclass(frozen=True)
class Chunk:
    payload: bytes
    gap: int  # samples missing before it (lost, or not sent)
    jitter: float  # seconds late


chunks = st.builds(Chunk, audio, st.integers(0, 3000) | st.just(0), st.floats(0, 0.05))


@settings(max_examples=200)
@given(st.lists(chunks, max_size=30), starts)
def test_every_byte_lands_at_its_phone_timestamp(
    items: list[Chunk], start: tuple[int, int]
) -> None:
    """One source with gaps and jitter: the output is the phone's timeline, shifted."""
    sequence, timestamp = start
    p, phone = make(sequence, timestamp), Phone(timestamp=0xFFFF0000)
    placed: dict[int, int] = {}  # our timestamp (unwrapped, from ``timestamp``) -> byte
    position = 0
    out: list[RtpPacket] = []
    for item in items:
        phone.skip(item.gap)
        position += item.gap if out or placed else 0  # the first packet starts at ``timestamp``
        wire = p.push(item.payload, phone.timestamp, phone.ssrc, phone.now + item.jitter)
        out += parsed(wire)
        for offset, byte in enumerate(item.payload):
            placed[position + offset] = byte
        position += len(item.payload)
        phone.skip(len(item.payload))
    out += parsed(p.flush())
    check_numbering(out, sequence, timestamp)
    got = {
        ts_delta(packet.timestamp, timestamp) % (1 << 32) + offset: byte
        for packet in out
        for offset, byte in enumerate(packet.payload)
    }
    assert {k: v for k, v in got.items() if v != SILENCE} == placed


@dataclass(frozen=True)
class Step:
    kind: str  # "audio", "silence", "new source", "flush"
    payload: bytes = b""
    gap: int = 0
    wall: float = 0.0  # seconds of wall clock before a new source


steps = st.one_of(
    st.builds(Step, st.just("audio"), audio, st.integers(0, 4000)),
    st.builds(Step, st.just("silence")),
    st.builds(Step, st.just("flush")),
    st.builds(Step, st.just("new source"), wall=st.floats(0, 3)),
)


@settings(max_examples=200)
@given(st.lists(steps, max_size=40), starts)
def test_mute_reinvites_and_gaps_keep_the_stream_continuous(
    items: list[Step], start: tuple[int, int]
) -> None:
    """Whatever happens, the sequence is consecutive, the timestamp only moves forward by at least
    a frame, and every phone byte comes out once, in order, with only silence added."""
    sequence, timestamp = start
    p, phone = make(sequence, timestamp), Phone()
    out: list[RtpPacket] = []
    sent = b""
    for step in items:
        if step.kind == "silence":
            out += parsed([p.silence()])
        elif step.kind == "flush":
            out += parsed(p.flush())
        elif step.kind == "new source":
            phone = Phone(ssrc=phone.ssrc + 1, timestamp=phone.timestamp ^ 0x5A5A5A5A,
                          now=phone.now + step.wall)  # fmt: skip
        else:
            phone.skip(step.gap)
            out += parsed(p.push(step.payload, phone.timestamp, phone.ssrc, phone.now))
            phone.skip(len(step.payload))
            sent += step.payload
    out += parsed(p.flush())
    check_numbering(out, sequence, timestamp)
    assert b"".join(x.payload for x in out).replace(bytes((SILENCE,)), b"") == sent
    assert p.late == 0
    assert p.resyncs == 0


def test_resync_tolerance_is_a_second() -> None:
    assert RESYNC == CLOCK_RATE
