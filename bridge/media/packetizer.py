"""The meeting leg's packetizer: G.711 from the phone in any packet size, 20 ms RTP packets out.

Janus AudioBridge takes exactly 20 ms of G.711 per packet (160 bytes at 8 kHz), while phones send
10-40 ms (80-320 bytes) or odd sizes, and change SSRC, sequence space and timestamp base whenever
a re-INVITE restarts their media. The meeting leg must not see any of that: it is one continuous
stream with the bridge's own SSRC, sequence number and timestamp (their random initial values,
RFC 3550 §5.1, are the caller's to draw: this module reads no randomness and no clock).

Decisions, and why:

- **Output sequence**: +1 per packet sent, never a gap: we send every packet we make, so a gap
  would tell the mixer about a loss that did not happen on its leg.
- **Output timestamp**: +160 per packet, plus a jump over every stretch with no audio, so that the
  mixer plays each phone sample at the time the phone captured it. Within one source the phone's
  own timestamps measure the stretch: they are exact, while arrival times carry network jitter
  (a burst after a stall is continuous audio, not a gap). The wall clock (``now``) decides only
  where the phone's timestamps mean nothing: across a source change (new SSRC), and when they
  disagree with the wall clock by more than :data:`RESYNC` (the phone restarted its timestamp
  base without changing SSRC). The timestamp never moves backwards: audio that would land on time
  already sent (after :meth:`Packetizer.silence` frames, or a wall-clock estimate that ran ahead)
  follows on directly.
- **Marker bit**: on the first packet after a jump of the output timestamp, after a source change,
  and where the phone set it (RFC 3551 §4.1: the first packet of a talkspurt), so that the mixer's
  jitter buffer may re-align there.
- **Partial frames**: the last bytes short of 160 wait for the next packet. When that packet does
  not start where they end (a gap in time, whether in one source or across a source change) they
  are padded with silence and sent, not dropped: dropping loses up to 19 ms of speech, often the
  end of a word, while padding adds at most 19 ms of silence that nobody hears, and keeps every
  byte at its timestamp. A gap shorter than the rest of the frame (a lost 10 ms packet) is filled
  with silence inside the frame instead, and a new source that starts right away continues it.
- **Late packets** (behind the expected timestamp, within :data:`RESYNC`) are dropped: their time
  is sent already, and the mixer's jitter buffer, not this one, reorders.
"""

from __future__ import annotations

from typing import Final

from .rtp import build_rtp, ts_delta

CLOCK_RATE: Final = 8000
"""G.711's RTP clock (RFC 3551 §4.5.14): one byte is one sample is one timestamp unit."""
FRAME: Final = 160
"""Bytes (and timestamp units) per meeting-leg packet: 20 ms, what Janus AudioBridge takes."""
RESYNC: Final = CLOCK_RATE
"""How far (1 s) the phone's timestamp gap may differ from the wall clock's before the wall clock
wins. Jitter is tens of ms, and a phone that stops sending (silence suppression, hold) advances
its timestamps by the time it was silent, so honest gaps agree to well within a second; a restarted
timestamp base is off by a random amount, almost always far more."""


class Packetizer:
    """Phone payloads in (:meth:`push`), 160-byte meeting-leg RTP packets out, as wire bytes."""

    __slots__ = (
        "_buffer",
        "_marker",
        "_seq",
        "_silence",
        "_src_due",
        "_src_next",
        "_src_out",
        "_src_ssrc",
        "_ts",
        "late",
        "payload_type",
        "resyncs",
        "ssrc",
    )

    def __init__(
        self, *, ssrc: int, sequence: int, timestamp: int, payload_type: int, silence: int
    ) -> None:
        """``ssrc``, ``sequence``, ``timestamp``: the meeting leg's, random (RFC 3550 §5.1).
        ``payload_type`` is 0 (PCMU) or 8 (PCMA); ``silence`` the law's code for 0 (0xFF, 0xD5)."""
        self.ssrc = ssrc
        self.payload_type = payload_type
        self._silence = bytes((silence,))
        self._seq = sequence  # of the next packet; counted without wrapping, masked when built
        self._ts = timestamp  # of the next packet: the first byte in _buffer, or the next byte
        self._buffer = bytearray()  # < FRAME bytes waiting for the rest of their frame
        self._marker = True  # the first packet starts a talkspurt
        self._src_ssrc: int | None = None  # the phone's current source...
        self._src_next: int | None = None  # ...the timestamp its next packet will have...
        self._src_out = 0  # ...where that packet goes in our timestamps...
        self._src_due = 0.0  # ...and when it is due (``now`` of the last packet + its duration)
        self.late = 0
        """Packets dropped because their time was sent already."""
        self.resyncs = 0
        """Timestamp jumps the wall clock overruled."""

    def push(
        self, payload: bytes, timestamp: int, ssrc: int, now: float, marker: bool = False
    ) -> list[bytes]:
        """A payload from the phone, with its RTP timestamp, SSRC and marker bit, received at
        ``now`` (seconds, any epoch): the meeting-leg packets it completes, possibly none."""
        size = len(payload)
        if ssrc == self._src_ssrc and self._src_next is not None:
            delta = ts_delta(timestamp, self._src_next)
            if delta == 0:  # the common case: the next packet of the same stream
                position = self._src_out
            else:
                wall = round((now - self._src_due) * CLOCK_RATE)
                if abs(delta - wall) > RESYNC:
                    self.resyncs += 1
                    position = self._src_out + max(wall, 0)
                    marker = True
                elif delta < 0:
                    self.late += 1
                    return []
                else:
                    position = self._src_out + delta
        else:
            marker = True
            if self._src_next is None:  # the first packet
                position = self._ts + len(self._buffer)
            else:
                position = self._src_out + max(round((now - self._src_due) * CLOCK_RATE), 0)
        out: list[bytes] = []
        position = self._skip_to(position, out)
        if marker:
            self._marker = True
        self._take(payload, out)
        self._src_ssrc = ssrc
        self._src_next = (timestamp + size) & 0xFFFFFFFF
        self._src_out = position + size
        self._src_due = now + size / CLOCK_RATE
        return out

    def flush(self) -> list[bytes]:
        """Send the partial frame, padded with silence: at the end of a call, or when the phone
        has gone quiet and its last syllable should not wait for its next packet."""
        out: list[bytes] = []
        if self._buffer:
            self._pad(out)
        return out

    def silence(self) -> bytes:
        """One packet that keeps the meeting leg alive while the phone sends nothing (muted, on
        hold): the partial frame padded with silence if there is one, else 20 ms of silence. It
        continues the sequence and timestamp, and later phone audio goes after it."""
        out: list[bytes] = []
        if self._buffer:
            self._pad(out)
        else:
            self._emit(self._silence * FRAME, out)
        return out[0]

    @property
    def sequence(self) -> int:
        """The sequence number the next packet will have."""
        return self._seq & 0xFFFF

    @property
    def timestamp(self) -> int:
        """The timestamp the next packet will have."""
        return self._ts & 0xFFFFFFFF

    # -- internals --------------------------------------------------------------------------------
    def _skip_to(self, position: int, out: list[bytes]) -> int:
        """Move the write position (the next free timestamp) forward to ``position``: fill a gap
        inside the partial frame with silence, or pad the partial frame and jump. Returns where
        the payload goes, which is never before the write position."""
        buffered = len(self._buffer)
        gap = position - (self._ts + buffered)
        if gap <= 0:
            return position - gap
        if buffered:
            room = FRAME - buffered
            if gap < room:
                self._buffer += self._silence * gap
                return position
            self._pad(out)
            gap -= room
        if gap:
            self._ts += gap
            self._marker = True
        return position

    def _take(self, payload: bytes, out: list[bytes]) -> None:
        buffer = self._buffer
        size = len(payload)
        offset = 0
        if buffer:
            offset = FRAME - len(buffer)
            if size < offset:
                buffer += payload
                return
            buffer += payload[:offset]
            self._emit(bytes(buffer), out)
            buffer.clear()
        while size - offset >= FRAME:
            # A 20 ms packet passes through whole: payload[0:160] of 160 bytes is payload itself.
            self._emit(payload[offset : offset + FRAME], out)
            offset += FRAME
        if offset < size:
            buffer += payload[offset:]

    def _pad(self, out: list[bytes]) -> None:
        buffer = self._buffer
        buffer += self._silence * (FRAME - len(buffer))
        self._emit(bytes(buffer), out)
        buffer.clear()

    def _emit(self, frame: bytes, out: list[bytes]) -> None:
        out.append(
            build_rtp(self.payload_type, self._seq, self._ts, self.ssrc, frame, self._marker)
        )
        self._seq += 1
        self._ts += FRAME
        self._marker = False
