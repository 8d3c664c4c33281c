"""DTMF keys from RFC 4733 telephone-event packets: one key per key press, whatever the network does.

A sender reports one event in many packets (RFC 4733 §2.5.1): the first with the marker bit, then
duration updates every packet time, then the end packet (E bit) sent three times (§2.5.1.4), all
with the event's start time as RTP timestamp (§2.5.1.2). So the receiver tells events apart by
their timestamp, and :class:`DtmfReceiver` reports the key at the first packet it sees with
a new timestamp, whichever packet that is:

- duplicates and updates of the current event (same timestamp) report nothing: the three end
  packets count once, and so does an event whose duration field wraps past 0xFFFF with the
  timestamp unchanged (how RFC 2833-era senders report long key presses);
- an event whose start packets were lost is still reported, at its first update or end packet;
- a long-duration event in RFC 4733 §2.5.1.3 segments (each segment a new timestamp, the previous
  one's plus 0xFFFF, no marker, E only at the very end) is one key: a new timestamp is a
  continuation when the current event has not ended, has the same code, the marker is clear and
  the timestamp moved by a whole number of maximal segments (so also when a segment was lost);
- a packet older than the current event (a late end packet of the previous key, compared with
  32-bit wraparound) is ignored, within a window of :data:`OLD_WINDOW` timestamp units;
- a new SSRC starts afresh: after a re-INVITE the phone may restart its timestamp base.

Event codes that are not keys (flash, tones; RFC 4733 §3.2 lists 0-15 as DTMF) are tracked as
events, so that their repeats are absorbed too, but report nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .rtp import RtpPacket, ts_delta

KEYS: Final = "0123456789*#ABCD"
"""Event codes 0-15 (RFC 4733 §3.2, Table 1) as the keys the call logic reads."""
SEGMENT: Final = 0xFFFF
"""The longest duration one packet can report, in timestamp units; a longer event is segmented."""
OLD_WINDOW: Final = 4 * SEGMENT
"""How far behind the current event a packet may be and still count as a late copy of an earlier
one (about 33 s at 8 kHz). An earlier event's packets are at most its last segment (<= 0xFFFF
units) plus network delay behind the next event; a packet further back means the sender moved its
timestamp base without changing SSRC, and is a new event rather than a key lost forever."""

_PAYLOAD = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The payload of one telephone-event packet (RFC 4733 §2.3)."""

    event: int
    """0-255; 0-15 are the DTMF keys."""
    end: bool
    """The E bit: this packet reports the end of the event."""
    volume: int
    """Power level in -dBm0, 0-63 (§2.3.4)."""
    duration: int
    """Time since the event's timestamp, in timestamp units, 0-65535 (§2.3.5)."""

    @property
    def key(self) -> str | None:
        return KEYS[self.event] if self.event < 16 else None


@dataclass(frozen=True, slots=True)
class TelephoneEventError:
    """A payload that is not a telephone event; ``reason`` is ``short``."""

    reason: str


def decode_event(payload: bytes) -> TelephoneEvent | TelephoneEventError:
    """The event in a telephone-event payload (§2.3): event, E, R, volume, duration.

    The reserved R bit is ignored, as §2.3.3 requires of receivers. Octets after the first four are
    ignored: without RFC 2198 redundancy (another payload type) a packet carries one event
    (§2.5.1.5), so they can only be padding from a careless sender. Returned, not raised: a bad
    payload is a counter on the relay's path, not an exception.
    """
    if len(payload) < 4:
        return TelephoneEventError("short")
    event, flags, duration = _PAYLOAD.unpack_from(payload)
    return TelephoneEvent(event, flags > 0x7F, flags & 0x3F, duration)


def encode_event(event: TelephoneEvent) -> bytes:
    """The four-octet payload for ``event`` (R bit clear)."""
    flags = (0x80 if event.end else 0) | (event.volume & 0x3F)
    return _PAYLOAD.pack(event.event, flags, event.duration)


class DtmfReceiver:
    """Telephone-event packets of one call in, each key press out once (see the module docstring)."""

    __slots__ = ("_code", "_ended", "_ssrc", "_timestamp", "errors")

    def __init__(self) -> None:
        self._ssrc: int | None = None
        self._timestamp: int | None = None  # the current event's (latest segment's) timestamp
        self._code = -1
        self._ended = False
        self.errors = 0
        """Payloads :func:`decode_event` refused."""

    def receive_packet(self, packet: RtpPacket) -> str | None:
        """A telephone-event packet as the relay parsed it: the key it starts, if any."""
        event = decode_event(packet.payload)
        if isinstance(event, TelephoneEventError):
            self.errors += 1
            return None
        return self.receive(event, packet.timestamp, packet.marker, packet.ssrc)

    def receive(
        self, event: TelephoneEvent, timestamp: int, marker: bool, ssrc: int = 0
    ) -> str | None:
        """One decoded packet: the key, when it starts a new key press; None otherwise."""
        if ssrc != self._ssrc:
            self._ssrc = ssrc
            self._timestamp = None
        current = self._timestamp
        if current is not None:
            delta = ts_delta(timestamp, current)
            if delta == 0:  # the current event again: an update, or a repeated end packet
                self._ended = self._ended or event.end
                return None
            if -OLD_WINDOW <= delta < 0:  # a late packet of an earlier event
                return None
            if delta > 0 and self._continues(event, delta, marker):
                self._timestamp = timestamp
                self._ended = event.end
                return None
        self._timestamp = timestamp
        self._code = event.event
        self._ended = event.end
        return event.key

    def _continues(self, event: TelephoneEvent, delta: int, marker: bool) -> bool:
        """Whether a newer timestamp is the next segment of a long-duration event (§2.5.1.3)."""
        return (
            not marker
            and not self._ended
            and event.event == self._code
            and delta % SEGMENT == 0
            and delta <= OLD_WINDOW
        )
