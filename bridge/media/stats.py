"""Reception statistics of one RTP source (RFC 3550 A.1, A.3, A.8): validity, loss and jitter.

:class:`SourceStats` is the receiving half of RTCP and the basis of latching: the relay sends to
the address a phone's media comes from only once that source is *valid*, i.e. after
:data:`MIN_SEQUENTIAL` packets in sequence from one SSRC (A.1's probation), so that one stray or
spoofed datagram cannot steal a call's audio. The relay keeps one instance per SSRC it hears and
routes packets to it; this class does not look at SSRCs.

The algorithm is A.1's ``update_seq``, with one fix: the C code compares ``seq == max_seq + 1`` in
``int``, so a source on probation that wraps from 65535 to 0 restarts its probation; here the
comparison is modulo 2^16.
"""

from __future__ import annotations

from typing import Final

from .rtcp import ReportBlock, ntp_middle
from .rtp import SEQ_MOD, ts_delta

MAX_DROPOUT: Final = 3000
"""A.1: the largest forward jump in sequence numbers still taken as loss (a minute at 50 packets a
second), not as a restart of the sender."""
MAX_MISORDER: Final = 100
"""A.1: how far back a sequence number may be and still be a late or duplicate packet."""
MIN_SEQUENTIAL: Final = 2
"""A.1: sequential packets before a source is valid. Two, as A.1 suggests for audio: a phone's
first packets must get through (its first words), and one stray packet cannot pass."""


class SourceStats:
    """Sequence, loss and jitter tracking for one SSRC, fed every packet from it."""

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_expected_prior",
        "_jitter",
        "_last_arrival",
        "_last_timestamp",
        "_lsr",
        "_lsr_at",
        "_max_seq",
        "_probation",
        "_received_prior",
        "_started",
        "clock_rate",
        "received",
        "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int = 8000) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._started = False
        self._probation = MIN_SEQUENTIAL
        self._base_seq = self._max_seq = self._cycles = 0
        self._bad_seq = SEQ_MOD + 1  # "so seq == bad_seq is false"
        self.received = 0
        """Packets counted since the source became valid (or restarted)."""
        self._received_prior = self._expected_prior = 0
        self._jitter = 0.0  # in timestamp units, as A.8 keeps it
        self._last_arrival: float | None = None  # in timestamp units
        self._last_timestamp = 0
        self._lsr = 0
        self._lsr_at = 0.0

    @property
    def valid(self) -> bool:
        """Whether the source has passed probation."""
        return self._probation == 0

    def update(self, sequence: int, timestamp: int, now: float) -> bool:
        """One packet from this source, arrived at ``now`` (seconds). True when it counts: the
        source is valid and the packet is not a jump that A.1 sets aside (the first packet of a
        possible restart, confirmed only by the next one in sequence)."""
        if not self._started:
            self._started = True
            self._init_seq(sequence)
            self._max_seq = (sequence - 1) & 0xFFFF
        if not self._update_seq(sequence):
            return False
        self._update_jitter(timestamp, now)
        return True

    def _init_seq(self, sequence: int) -> None:
        self._base_seq = self._max_seq = sequence
        self._bad_seq = SEQ_MOD + 1
        self._cycles = 0
        self.received = self._received_prior = self._expected_prior = 0
        # A restarted sender has a new timestamp base: one transit difference across it would add
        # a huge sample to the jitter, which takes seconds to decay. Start the estimate afresh.
        self._last_arrival = None

    def _update_seq(self, sequence: int) -> bool:
        delta = (sequence - self._max_seq) & 0xFFFF
        if self._probation:
            if delta == 1:  # the next in sequence (modulo 2^16, unlike A.1's C)
                self._probation -= 1
                self._max_seq = sequence
                if self._probation == 0:
                    self._init_seq(sequence)
                    self.received += 1
                    return True
            else:
                self._probation = MIN_SEQUENTIAL - 1
                self._max_seq = sequence
            return False
        if delta < MAX_DROPOUT:  # in order, with a permissible gap
            if sequence < self._max_seq:
                self._cycles += SEQ_MOD
            self._max_seq = sequence
        elif delta <= SEQ_MOD - MAX_MISORDER:  # a very large jump
            if sequence == self._bad_seq:
                # Two sequential packets after the jump: the sender restarted its sequence
                # numbers (a restart without an SSRC change, §8.2 allows none, but phones do).
                self._init_seq(sequence)
            else:
                self._bad_seq = (sequence + 1) & 0xFFFF
                return False
        # else: a duplicate or a late packet, counted as received (A.1)
        self.received += 1
        return True

    def _update_jitter(self, timestamp: int, now: float) -> None:
        """A.8: J += (|D| - J) / 16, D the change in transit time between consecutive packets, in
        timestamp units. The timestamp difference is taken modulo 2^32."""
        arrival = now * self.clock_rate
        last = self._last_arrival
        if last is not None:
            transit_change = (arrival - last) - ts_delta(timestamp, self._last_timestamp)
            self._jitter += (abs(transit_change) - self._jitter) / 16
        self._last_arrival = arrival
        self._last_timestamp = timestamp

    # -- reports (A.3) ----------------------------------------------------------------------------
    @property
    def extended_max(self) -> int:
        """The highest sequence number received, with 2^16 for each wraparound."""
        return self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self._base_seq + 1 if self.valid else 0

    @property
    def lost(self) -> int:
        """Expected minus received; negative when duplicates arrived. Not clamped."""
        return self.expected - self.received

    @property
    def jitter(self) -> int:
        """Interarrival jitter in timestamp units, as a report carries it."""
        return int(self._jitter)

    def sender_report(self, ntp_timestamp: int, now: float) -> None:
        """This source's SR arrived at ``now``: remember it for LSR and DLSR."""
        self._lsr = ntp_middle(ntp_timestamp)
        self._lsr_at = now

    def report(self, now: float) -> ReportBlock:
        """The report block about this source, and the start of a new reporting interval (the
        fraction lost is over the interval since the previous call, A.3)."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min((lost_interval << 8) // expected_interval, 255)
        dlsr = 0
        if self._lsr:
            dlsr = min(max(int((now - self._lsr_at) * 65536), 0), 0xFFFFFFFF)
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=min(max(self.lost, -0x800000), 0x7FFFFF),
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=self.jitter,
            lsr=self._lsr,
            dlsr=dlsr,
        )
