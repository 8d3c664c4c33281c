"""RFC 3550 A.1/A.3/A.8 reception statistics: probation, wraparound, loss, restarts and jitter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.media.rtcp import ReportBlock, ntp_timestamp
from bridge.media.stats import MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL, SourceStats

PTIME = 0.02


def feed(stats: SourceStats, sequences: list[int], start: float = 100.0) -> list[bool]:
    """Packets sent every 20 ms, arriving with no jitter; ``sequences`` says which got through."""
    return [
        stats.update(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, start + seq * PTIME)
        for seq in sequences
    ]


def valid(stats: SourceStats) -> bool:
    """Read through a call, so that mypy does not narrow the property across updates."""
    return stats.valid


def test_a_source_is_valid_after_min_sequential_packets() -> None:
    stats = SourceStats(ssrc=5)
    assert MIN_SEQUENTIAL == 2
    assert feed(stats, [10]) == [False]
    assert not valid(stats)
    assert feed(stats, [11, 12]) == [True, True]
    assert valid(stats)
    # counting starts at the packet that ended probation (A.1 init_seq)
    assert (stats.received, stats.expected, stats.lost) == (2, 2, 0)


def test_out_of_order_during_probation_starts_it_again() -> None:
    stats = SourceStats(ssrc=5)
    assert feed(stats, [10, 12, 20, 21]) == [False, False, False, True]


def test_probation_across_the_wrap() -> None:
    # A.1's C compares seq == max_seq + 1 in int: 65535 then 0 would never pass. Ours does.
    stats = SourceStats(ssrc=5)
    assert feed(stats, [65535, 65536, 65537]) == [False, True, True]
    assert (stats.extended_max, stats.expected) == (1, 2)  # counted from the packet at 0


def test_wraparound_counts_cycles() -> None:
    stats = SourceStats(ssrc=5)
    feed(stats, list(range(65530, 65546)))
    assert stats.extended_max == 65536 + 9
    assert stats.report(0.0).highest_sequence == 65536 + 9
    assert (stats.expected, stats.received) == (15, 15)


def test_loss_and_fraction_per_interval() -> None:
    stats = SourceStats(ssrc=5)
    feed(stats, [0, 1, *range(2, 12, 2)])  # valid from 1; then 2, 4, 6, 8, 10: 4 lost of 10
    first = stats.report(1.0)
    assert (first.cumulative_lost, first.fraction_lost) == (4, 4 * 256 // 10)
    feed(stats, list(range(11, 21)))  # nothing lost since
    second = stats.report(2.0)
    assert (second.cumulative_lost, second.fraction_lost) == (4, 0)
    assert stats.report(3.0).fraction_lost == 0  # an interval with nothing at all


def test_duplicates_make_loss_negative() -> None:
    stats = SourceStats(ssrc=5)
    feed(stats, [0, 1, 2, 2, 2, 3])
    assert stats.lost == -2
    assert stats.report(0.0).cumulative_lost == -2
    assert stats.report(0.0).fraction_lost == 0


def test_late_packets_within_misorder_count() -> None:
    stats = SourceStats(ssrc=5)
    assert feed(stats, [0, 1, 2, 5, 3, 4, 6]) == [False, *[True] * 6]
    assert (stats.expected, stats.received, stats.extended_max) == (6, 6, 6)


def test_a_large_jump_is_a_restart_once_confirmed() -> None:
    stats = SourceStats(ssrc=5)
    feed(stats, [0, 1, 2])
    jump = 2 + MAX_DROPOUT + 10
    assert stats.update(jump, 0, 1.0) is False  # one packet: maybe stray, set aside
    assert stats.extended_max == 2
    assert stats.update(jump + 1, 160, 1.02) is True  # the next in sequence: a restart
    assert (stats.received, stats.expected) == (1, 1)


def test_a_large_jump_that_is_not_confirmed_is_ignored() -> None:
    stats = SourceStats(ssrc=5)
    feed(stats, [0, 1, 2])
    assert stats.update(20_000, 0, 1.0) is False
    assert stats.update(3, 480, 1.0) is True
    assert stats.extended_max == 3


def test_very_late_packets_are_set_aside() -> None:
    stats = SourceStats(ssrc=5)
    feed(stats, list(range(0, 500)))
    assert stats.update(499 - MAX_MISORDER - 50, 0, 20.0) is False  # a possible restart...
    assert stats.update(499 - MAX_MISORDER + 5, 0, 20.0) is True  # ...but this one is late


def test_jitter_is_zero_without_jitter_and_follows_a8() -> None:
    stats = SourceStats(ssrc=5)
    feed(stats, list(range(50)))
    assert stats.jitter == 0
    # Every other packet 10 ms late: |D| is 80 units each time, J tends to 80 (A.8).
    stats = SourceStats(ssrc=5)
    for seq in range(2000):
        stats.update(seq, seq * 160, seq * PTIME + (0.01 if seq % 2 else 0.0))
    assert stats.jitter == 79  # 80 * (1 - (15/16)^n), truncated as the report carries it


def test_jitter_across_a_timestamp_wrap() -> None:
    stats = SourceStats(ssrc=5)
    for seq in range(20):
        stats.update(seq, (0xFFFFFE00 + seq * 160) & 0xFFFFFFFF, seq * PTIME)
    assert stats.jitter == 0


def test_report_echoes_the_last_sender_report() -> None:
    stats = SourceStats(ssrc=5)
    feed(stats, [0, 1])
    assert (stats.report(1.0).lsr, stats.report(1.0).dlsr) == (0, 0)
    ntp = ntp_timestamp(1_700_000_000.5)
    stats.sender_report(ntp, now=10.0)
    block = stats.report(now=11.5)
    assert block.lsr == (ntp >> 16) & 0xFFFFFFFF
    assert block.dlsr == 3 * 65536 // 2
    assert isinstance(block, ReportBlock) and block.ssrc == 5


@pytest.mark.parametrize("clock_rate", [8000, 48000])
def test_jitter_is_in_timestamp_units(clock_rate: int) -> None:
    stats = SourceStats(ssrc=5, clock_rate=clock_rate)
    step = clock_rate // 50
    for seq in range(3000):
        stats.update(seq, seq * step, seq * PTIME + (0.01 if seq % 2 else 0.0))
    assert stats.jitter == clock_rate // 100 - 1


# -- Hypothesis -----------------------------------------------------------------------------------
@given(st.integers(0, 0xFFFF), st.lists(st.booleans(), min_size=2, max_size=300))
def test_in_order_loss_is_counted_exactly(first: int, delivered: list[bool]) -> None:
    """In-order delivery with any losses and a wrap: lost = gaps after the first valid packet."""
    delivered[:2] = [True, True]  # probation passes on the first two
    stats = SourceStats(ssrc=1)
    sequences = [first + i for i, ok in enumerate(delivered) if ok]
    assert feed(stats, sequences)[1:] == [True] * (len(sequences) - 1)
    last = len(delivered) - 1 - delivered[::-1].index(True)
    assert stats.expected == last  # packets 1 .. last
    assert stats.lost == delivered[1 : last + 1].count(False)
    block = stats.report(0.0)
    assert block.cumulative_lost == stats.lost
    assert 0 <= block.fraction_lost <= 255


@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.floats(0, 1e6)),
        max_size=100,
    )
)
def test_any_packets_keep_the_report_in_range(packets: list[tuple[int, int, float]]) -> None:
    stats = SourceStats(ssrc=1)
    for sequence, timestamp, now in packets:
        stats.update(sequence, timestamp, now)
        block = stats.report(now)
        assert 0 <= block.fraction_lost <= 255
        assert -0x800000 <= block.cumulative_lost <= 0x7FFFFF
        assert 0 <= block.highest_sequence <= 0xFFFFFFFF
        assert block.jitter >= 0
