"""One call's audio between its two legs, sans-IO: datagrams and ``now`` in, datagrams out.

The **phone leg** is the phone's RTP (any G.711 packet time, RFC 4733 keys, RTCP). The **meeting leg**
is plain RTP toward the media endpoint the conference server names for the attendee (20 ms G.711,
no events, no RTCP). :class:`CallMedia` sits between them (docs/media.md):

- **Latching** (symmetric RTP): we send to where the phone's packets come from, not only to the
  SDP address. A source is latched after :data:`LATCH_PACKETS` packets in sequence with one SSRC
  (one packet when it is the SDP address itself), so that a stray or forged datagram cannot take
  the call. Once latched, other sources are dropped until the latched one has been silent for
  :data:`RELATCH_AFTER` (a NAT that rebinds), or a re-INVITE names a new address. A new SSRC from
  the latched source (a phone that restarts its stream) is taken after the same probation.
- **Keys**: telephone-events on the negotiated payload type become keys (:attr:`CallMedia.keys`)
  and never reach the meeting.
- **The gates**: while the server says the attendee is muted, or the call is on hold or waiting in
  the lobby, nothing the phone sends reaches the meeting (:attr:`CallMedia.send_open`), whatever
  the phone does with our re-INVITE. While waiting in the lobby the phone hears nothing of the
  meeting (:attr:`CallMedia.hear_open`).
- **Normalisation**: the meeting leg gets 20 ms packets in its own continuous sequence and
  timestamp space (:class:`~bridge.media.packetizer.Packetizer`), across the phone's re-INVITEs
  and address changes; so does the phone leg, which carries the meeting's audio and our prompts.
- **Keepalive**: a meeting leg that has carried nothing for :data:`KEEPALIVE` seconds gets one
  silent packet: a mixer that sends only to participants it hears from (Janus AudioBridge sends
  nothing to a plain-RTP participant before its first packet) keeps sending while the phone is
  muted, on hold or silent.
- **Prompts** play to the phone only; the meeting's audio to the phone pauses meanwhile.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Final

from . import rtcp
from .analysis import payload_dbov
from .g711 import ALAW, ULAW, Law, alaw_to_ulaw, ulaw_to_alaw
from .packetizer import FRAME, Packetizer
from .rtp import RtpError, parse_rtp
from .stats import SourceStats
from .telephone_event import DtmfReceiver, TelephoneEventError, decode_event

Address = tuple[str, int]

MAX_DATAGRAM: Final = 1500
"""Largest datagram read as RTP (security limit): 40 ms of G.711 is 332 bytes, and nothing larger
than one Ethernet frame is a phone's audio."""
LATCH_PACKETS: Final = 3
"""Packets in sequence, one SSRC, from a source other than the SDP address before it is latched."""
RELATCH_AFTER: Final = 1.0
"""Seconds of silence from the latched source before another source may take its place."""
KEEPALIVE: Final = 1.0
"""Seconds without a packet on the meeting leg before a silent one is sent."""
TALK_EVERY: Final = 5
"""The level of one forwarded packet in this many is measured (every 100 ms at 20 ms): reading
every fourth byte of one packet costs about 2 µs, too much for every packet (bench/media_core.py)."""
TALK_DBOV: Final = -40.0
"""A measured packet at least this loud counts as speech (the prompts average about -32 dBov)."""
TALK_WINDOW: Final = 5
"""Talking means 2 loud measurements among the last 5 (half a second): one click is not speech,
and a pause between two words does not end it."""
RTCP_INTERVAL: Final = 5.0
"""Seconds between our reports to the phone (RFC 3550 §6.2's minimum)."""
_HEADER: Final = struct.Struct("!HII")  # sequence, timestamp, SSRC after the first two octets
_TIMESTAMP_SSRC: Final = struct.Struct("!II")
_PROMPT: Final = -1  # the phone-leg packetizer's source id for prompts: no real SSRC is negative


@dataclass(slots=True)
class Counters:
    """What one call's relay did, for its summary line and the metrics (docs/operations.md)."""

    phone_packets: int = 0
    """Datagrams read on the phone leg's RTP port."""
    phone_octets: int = 0
    to_meeting_packets: int = 0
    to_meeting_octets: int = 0
    meeting_packets: int = 0
    """Datagrams read from the meeting leg."""
    meeting_octets: int = 0
    to_phone_packets: int = 0
    to_phone_octets: int = 0
    muted: int = 0
    """Phone audio dropped because the gate was closed (muted, held, lobby)."""
    not_rtp: int = 0
    too_big: int = 0
    stranger: int = 0
    """Packets from a source that is not (yet) the latched one."""
    payload_type: int = 0
    """Packets of a payload type the call did not negotiate (comfort noise included)."""
    paused: int = 0
    """Meeting audio not played to the phone (a prompt playing, the lobby)."""
    keys: int = 0
    lost: int = 0
    """Phone packets that never arrived (sequence gaps, RFC 3550 A.3), as of the last second."""
    latches: int = 0
    rtcp: int = 0
    rtcp_invalid: int = 0

    def add(self, other: Counters) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass(frozen=True, slots=True)
class Ids:
    """The random starting points of our two streams (RFC 3550 §5.1), drawn by the caller."""

    meeting_ssrc: int
    meeting_sequence: int
    meeting_timestamp: int
    phone_ssrc: int
    phone_sequence: int
    phone_timestamp: int


class CallMedia:
    """The relay state of one call. The caller owns the sockets: it hands each datagram to
    :meth:`from_phone`, :meth:`from_phone_rtcp` or :meth:`from_meeting` and sends what they return,
    and calls :meth:`tick` every 20 ms while :attr:`prompting`, :meth:`housekeeping` about every
    second."""

    __slots__ = (
        "_candidate",
        "_dtmf",
        "_event_pt",
        "_law",
        "_meeting_pt",
        "_phone_pt",
        "_phone_stats",
        "_prompt",
        "_prompt_gap",
        "_prompt_index",
        "_prompt_resume",
        "_prompt_ts",
        "_rtcp_at",
        "_sent_to_meeting_at",
        "_sent_to_phone",
        "_ssrc",
        "_talk_count",
        "_talk_loud",
        "_to_meeting",
        "_to_phone",
        "cname",
        "counters",
        "hear_open",
        "keys",
        "last_from_phone",
        "latched",
        "meeting",
        "phone",
        "phone_rtcp",
        "rtcp_target",
        "send_open",
        "talking",
        "talking_changed",
    )

    def __init__(
        self,
        *,
        codec: str,
        payload_type: int,
        event_payload_type: int | None,
        phone: Address | None,
        phone_rtcp: Address | None,
        ids: Ids,
        cname: str,
    ) -> None:
        """``codec`` (``PCMU`` or ``PCMA``) and the payload types are the phone's, as negotiated;
        ``phone`` and ``phone_rtcp`` its SDP addresses (None when it gave none)."""
        self._law: Law = ULAW if codec == "PCMU" else ALAW
        self._phone_pt = payload_type
        self._event_pt = event_payload_type
        self.phone = phone
        self.phone_rtcp = phone_rtcp
        self.cname = cname
        self.latched: Address | None = None
        self.rtcp_target: Address | None = None
        self._ssrc: int | None = None
        self._candidate: tuple[Address, int, int, int] | None = None  # source, ssrc, next seq, n
        self.last_from_phone = -RELATCH_AFTER
        self._dtmf = DtmfReceiver()
        self._phone_stats: SourceStats | None = None
        self.keys: list[str] = []
        """Keys the phone pressed (RFC 4733), for the caller to take."""
        self.send_open = False
        """Whether the phone's audio may reach the meeting."""
        self.hear_open = False
        """Whether the meeting's audio may reach the phone."""
        self.meeting: Address | None = None
        """The meeting leg's media endpoint; None when the server names none."""
        self._meeting_pt = self._law.payload_type
        self._to_meeting = Packetizer(
            ssrc=ids.meeting_ssrc,
            sequence=ids.meeting_sequence,
            timestamp=ids.meeting_timestamp,
            payload_type=self._law.payload_type,
            silence=self._law.silence,
        )
        self._to_phone = Packetizer(
            ssrc=ids.phone_ssrc,
            sequence=ids.phone_sequence,
            timestamp=ids.phone_timestamp,
            payload_type=payload_type,
            silence=self._law.silence,
        )
        self._sent_to_meeting_at = -KEEPALIVE
        self._sent_to_phone = False  # since the last report: it is an SR if so, else an RR
        self._rtcp_at = 0.0
        self._prompt: Sequence[bytes] = ()
        self._prompt_index = 0
        self._prompt_gap: float | None = None
        self._prompt_resume = 0.0
        self._prompt_ts = 0
        self.counters = Counters()
        self.talking = False
        """Whether the phone speaks into the meeting now (its forwarded audio's level)."""
        self.talking_changed = False
        """Set when :attr:`talking` changes, for the caller to report and clear."""
        self._talk_count = 0
        self._talk_loud = 0  # the last TALK_WINDOW measurements, one bit each (1: loud)

    # -- configuration (the call layer) -----------------------------------------------------------
    def renegotiate(
        self,
        *,
        codec: str,
        payload_type: int,
        event_payload_type: int | None,
        phone: Address | None,
        phone_rtcp: Address | None,
    ) -> None:
        """A re-INVITE settled the phone leg again. A new address restarts latching; the meeting
        leg does not notice anything (its packetizer keeps its sequence and timestamps)."""
        if phone != self.phone:
            self.latched = None
            self._candidate = None
            self.rtcp_target = None
        self.phone, self.phone_rtcp = phone, phone_rtcp
        self._law = ULAW if codec == "PCMU" else ALAW
        self._phone_pt = payload_type
        self._to_phone.payload_type = payload_type
        self._event_pt = event_payload_type

    def connect_meeting(self, endpoint: Address, codec: str, payload_type: int) -> None:
        """The meeting leg's media endpoint, codec and payload type (from the join answer)."""
        self.meeting = endpoint
        self._meeting_pt = payload_type
        self._to_meeting.payload_type = payload_type
        if codec not in ("PCMU", "PCMA"):
            raise ValueError(f"the meeting leg's codec must be G.711, got {codec}")
        self._sent_to_meeting_at = -KEEPALIVE  # send a first packet now: the mixer waits for one

    @property
    def codec(self) -> str:
        """The phone's codec: ``PCMU`` or ``PCMA``."""
        return self._law.name

    @property
    def phone_target(self) -> Address | None:
        """Where the phone leg sends: the latched source, else the SDP address."""
        return self.latched or self.phone

    # -- the phone leg ----------------------------------------------------------------------------
    def from_phone(self, data: bytes, source: Address, now: float) -> list[bytes]:
        """A datagram on the phone leg's RTP port: the meeting-leg packets it makes (often one,
        none while muted or before latching). Keys it carries go to :attr:`keys`."""
        counters = self.counters
        counters.phone_packets += 1
        size = len(data)
        counters.phone_octets += size
        if size > MAX_DATAGRAM:
            counters.too_big += 1
            return []
        if size < 12 or data[0] & 0xC0 != 0x80:
            counters.not_rtp += 1
            return []
        sequence, timestamp, ssrc = _HEADER.unpack_from(data, 2)
        if (source != self.latched or ssrc != self._ssrc) and not self._latch(
            source, ssrc, sequence, now
        ):
            counters.stranger += 1
            return []
        self.last_from_phone = now
        if data[0] & 0x3F:  # padding, extension or CSRCs: the general parser
            try:
                payload = parse_rtp(data).payload
            except RtpError:
                counters.not_rtp += 1
                return []
        else:
            payload = data[12:]
        stats = self._phone_stats
        if stats is not None:
            stats.update(sequence, timestamp, now)
        second = data[1]
        payload_type = second & 0x7F
        if payload_type == self._phone_pt:
            if not self.send_open:
                counters.muted += 1
                if self.talking:
                    self._talked(False)
                return []
            self._talk_count += 1
            if self._talk_count >= TALK_EVERY:
                self._talk_count = 0
                self._measure(payload)
            if self.meeting is None:
                return []
            if self._meeting_pt != self._phone_pt:
                payload = ulaw_to_alaw(payload) if self._law is ULAW else alaw_to_ulaw(payload)
            out = self._to_meeting.push(payload, timestamp, ssrc, now, second > 0x7F)
            # Audio is flowing, even when this packet only half-filled a frame: a keepalive now
            # would pad that frame with silence in the middle of a word.
            self._sent_to_meeting_at = now
            if out:
                counters.to_meeting_packets += len(out)
                counters.to_meeting_octets += FRAME * len(out)
            return out
        if payload_type == self._event_pt:
            event = decode_event(payload)
            if not isinstance(event, TelephoneEventError):
                key = self._dtmf.receive(event, timestamp, second > 0x7F, ssrc)
                if key is not None:
                    counters.keys += 1
                    self.keys.append(key)
            return []
        counters.payload_type += 1
        return []

    def _measure(self, payload: bytes) -> None:
        loud = payload_dbov(payload, self._law, 4) >= TALK_DBOV
        self._talk_loud = ((self._talk_loud << 1) | loud) & ((1 << TALK_WINDOW) - 1)
        talking = self._talk_loud.bit_count() >= 2
        if talking != self.talking:
            self._talked(talking)

    def _talked(self, talking: bool) -> None:
        self.talking, self.talking_changed = talking, True
        if not talking:
            self._talk_loud = 0

    def _latch(self, source: Address, ssrc: int, sequence: int, now: float) -> bool:
        """Whether a packet from ``source`` with ``ssrc`` may pass: probation toward latching it
        (see the module docstring)."""
        if (
            self.latched is not None
            and source != self.latched
            and now - self.last_from_phone < RELATCH_AFTER
        ):
            return False  # the latched source is alive: a stranger
        candidate = self._candidate
        if (
            candidate is not None
            and candidate[0] == source
            and candidate[1] == ssrc
            and candidate[2] == sequence
        ):
            count = candidate[3] + 1
        else:
            count = 1
        # The SDP address vouches for the first packet; any later change needs probation.
        needed = 1 if source == self.phone and self.latched is None else LATCH_PACKETS
        if count < needed:
            self._candidate = (source, ssrc, (sequence + 1) & 0xFFFF, count)
            return False
        self._candidate = None
        if source != self.latched:
            self.counters.latches += 1
            self.rtcp_target = None
        self.latched, self._ssrc = source, ssrc
        self._phone_stats = SourceStats(ssrc)
        return True

    def from_phone_rtcp(self, data: bytes, source: Address) -> None:
        """A datagram on the phone leg's RTCP port: counted, checked, and its source (when it is
        the latched host) becomes where our reports go."""
        self.counters.rtcp += 1
        try:
            compound = rtcp.parse_rtcp(data)
        except rtcp.RtcpError:
            self.counters.rtcp_invalid += 1
            return
        if self.latched is not None and source[0] == self.latched[0]:
            self.rtcp_target = source
        stats = self._phone_stats
        if stats is not None:
            for report in compound.reports:
                if report.ssrc == stats.ssrc and report.sender_info is not None:
                    stats.sender_report(report.sender_info.ntp_timestamp, self._rtcp_at)

    # -- the meeting leg --------------------------------------------------------------------------
    def from_meeting(self, data: bytes, now: float) -> list[bytes]:
        """A datagram from the meeting's media endpoint (the socket is connected to it, so the
        source was checked by the kernel): the phone-leg packets it makes."""
        counters = self.counters
        counters.meeting_packets += 1
        size = len(data)
        counters.meeting_octets += size
        if size < 12 or size > MAX_DATAGRAM or data[0] & 0xC0 != 0x80:
            counters.not_rtp += 1
            return []
        second = data[1]
        if second & 0x7F != self._meeting_pt:
            counters.payload_type += 1
            return []
        if not self.hear_open or self._prompt:
            counters.paused += 1
            return []
        timestamp, ssrc = _TIMESTAMP_SSRC.unpack_from(data, 4)
        payload = data[12:] if not data[0] & 0x3F else _payload(data)
        if payload is None:
            counters.not_rtp += 1
            return []
        if self._meeting_pt != self._phone_pt:
            payload = alaw_to_ulaw(payload) if self._law is ULAW else ulaw_to_alaw(payload)
        return self._sent(self._to_phone.push(payload, timestamp, ssrc, now, second > 0x7F))

    def _sent(self, out: list[bytes]) -> list[bytes]:
        if out:
            counters = self.counters
            counters.to_phone_packets += len(out)
            counters.to_phone_octets += FRAME * len(out)
            self._sent_to_phone = True
        return out

    # -- prompts and timers -----------------------------------------------------------------------
    def play(self, frames: Sequence[bytes], *, repeat_after: float | None = None) -> None:
        """Play 20 ms ``frames`` to the phone from the next :meth:`tick`, in place of the meeting's
        audio; again after ``repeat_after`` seconds of pause, until :meth:`stop`."""
        self._prompt = frames
        self._prompt_index = 0
        self._prompt_gap = repeat_after
        self._prompt_resume = 0.0

    def stop(self) -> None:
        """End the prompt (the meeting's audio resumes)."""
        self._prompt = ()
        self._prompt_gap = None

    @property
    def prompting(self) -> bool:
        return bool(self._prompt)

    def tick(self, now: float) -> list[bytes]:
        """Every 20 ms while :attr:`prompting`: the next prompt frame for the phone, if due."""
        frames = self._prompt
        if not frames or now < self._prompt_resume:
            return []
        index = self._prompt_index
        if index >= len(frames):
            if self._prompt_gap is None:
                self.stop()
                return []
            self._prompt_index = 0
            self._prompt_resume = now + self._prompt_gap
            return []
        self._prompt_index = index + 1
        self._prompt_ts += FRAME
        # The frames are in the phone's own law: the caller picks the prompt file by codec.
        return self._sent(self._to_phone.push(frames[index], self._prompt_ts, _PROMPT, now))

    def housekeeping(self, now: float, wallclock: float) -> tuple[bytes | None, bytes | None]:
        """About every second: a keepalive for the meeting leg and an RTCP report for the phone,
        when due. ``wallclock`` is Unix time, for the report's NTP timestamp."""
        self.counters.lost = self.lost
        if self.talking and now - self.last_from_phone >= TALK_WINDOW * TALK_EVERY * 0.02:
            self._talked(False)  # the phone went quiet (silence suppression, hold, hang-up)
        keepalive = None
        if self.meeting is not None and now - self._sent_to_meeting_at >= KEEPALIVE:
            keepalive = self._to_meeting.silence()
            self._sent_to_meeting_at = now
            self.counters.to_meeting_packets += 1
            self.counters.to_meeting_octets += FRAME
        report = None
        if now - self._rtcp_at >= RTCP_INTERVAL:
            self._rtcp_at = now
            report = self._report(now, wallclock)
        return keepalive, report

    def _report(self, now: float, wallclock: float) -> bytes:
        stats = self._phone_stats
        block = stats.report(now) if stats is not None and stats.valid else None
        ssrc = self._to_phone.ssrc
        if not self._sent_to_phone:  # §6.4: an SR only from a participant that sent meanwhile
            return rtcp.build_receiver_report(ssrc, self.cname, block)
        self._sent_to_phone = False
        sender = rtcp.SenderInfo(
            rtcp.ntp_timestamp(wallclock),
            self._to_phone.timestamp,
            self.counters.to_phone_packets,
            self.counters.to_phone_octets,
        )
        return rtcp.build_sender_report(ssrc, self.cname, sender, block)

    @property
    def rtcp_destination(self) -> Address | None:
        """Where reports to the phone go: where its RTCP comes from, else its SDP RTCP address."""
        return self.rtcp_target or self.phone_rtcp

    def flush(self) -> list[bytes]:
        """The meeting leg's partial frame, padded: when the gate closes or the call ends."""
        return self._to_meeting.flush() if self.meeting is not None else []

    @property
    def lost(self) -> int:
        """Packets the phone sent that never arrived (RFC 3550 A.3), since the source latched."""
        stats = self._phone_stats
        return max(stats.lost, 0) if stats is not None else 0


def _payload(data: bytes) -> bytes | None:
    try:
        return parse_rtp(data).payload
    except RtpError:
        return None
