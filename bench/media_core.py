"""Cost of the sans-IO media core per packet, in ns, against the relay's 20 µs per-packet budget
(50,000 packets a second on one core).

Each figure is the best of five runs of a tight loop over pre-built inputs (no allocation of
inputs in the loop). The relay's own path per phone packet is roughly: is_rtcp + parse_rtp +
SourceStats.update + Packetizer.push (+ build, inside push) + the socket send.
Run: .venv/bin/python bench/media_core.py
"""

from __future__ import annotations

import platform
import struct
import sys
import time
from collections.abc import Callable

from bridge.media.analysis import payload_dbov
from bridge.media.g711 import ULAW, ulaw_to_alaw
from bridge.media.packetizer import Packetizer
from bridge.media.rtp import RtpPacket, build_rtp, is_rtcp, parse_rtp
from bridge.media.stats import SourceStats
from bridge.media.telephone_event import DtmfReceiver

BUDGET_NS = 20_000
N = 200_000
PAYLOAD = bytes(range(160))
PLAIN = build_rtp(0, 1234, 160_000, 0x1234_5678, PAYLOAD)  # 172 bytes, as phones send
# two CSRCs, a one-word extension and four octets of padding: the slow path
FULL = (
    bytes.fromhex("b2000001000000a012345678")
    + bytes(8)
    + bytes.fromhex("bede000110ff0000")
    + PAYLOAD
    + bytes.fromhex("00000004")
)
DTMF = parse_rtp(build_rtp(101, 1, 8000, 1, bytes.fromhex("050a00a0")))


def best(fn: Callable[[int], None], n: int = N) -> float:
    """ns per call of the loop body ``fn`` runs ``n`` times, best of five."""
    runs = []
    for _ in range(5):
        start = time.perf_counter_ns()
        fn(n)
        runs.append((time.perf_counter_ns() - start) / n)
    return min(runs)


def loop_parse(n: int, data: bytes = PLAIN) -> None:
    for _ in range(n):
        parse_rtp(data)


def loop_parse_full(n: int) -> None:
    loop_parse(n, FULL)


_HEADER = struct.Struct("!BBHII")


def parse_with_init(data: bytes) -> RtpPacket:
    """parse_rtp's fast path as it would be with the frozen dataclass's own __init__."""
    if len(data) < 12:
        raise ValueError("short")
    b0, b1, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if b0 & 0xC0 != 0x80 or b0 & 0x3F:
        raise ValueError("not the fast path")
    return RtpPacket(b1 > 0x7F, b1 & 0x7F, sequence, timestamp, ssrc, data[12:])


def loop_init(n: int) -> None:
    for _ in range(n):
        parse_with_init(PLAIN)


def loop_build(n: int) -> None:
    for i in range(n):
        build_rtp(0, i, i * 160, 0x1234_5678, PAYLOAD)


def loop_is_rtcp(n: int) -> None:
    for _ in range(n):
        is_rtcp(PLAIN)


def loop_push(size: int) -> Callable[[int], None]:
    def run(n: int) -> None:
        p = Packetizer(ssrc=1, sequence=0, timestamp=0, payload_type=0, silence=0xFF)
        payload = bytes(range(size))
        push = p.push
        for i in range(n):
            push(payload, i * size, 7, i * 0.02)

    return run


def loop_stats(n: int) -> None:
    stats = SourceStats(ssrc=1)
    update = stats.update
    for i in range(n):
        update(i & 0xFFFF, (i * 160) & 0xFFFFFFFF, i * 0.02)


def loop_dtmf(n: int) -> None:
    receiver = DtmfReceiver()
    for _ in range(n):
        receiver.receive_packet(DTMF)


def loop_transcode(n: int) -> None:
    for _ in range(n):
        ulaw_to_alaw(PAYLOAD)


def loop_level(stride: int) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            payload_dbov(PAYLOAD, ULAW, stride)

    return run


CASES: list[tuple[str, Callable[[int], None]]] = [
    ("parse_rtp, 172 B, plain header", loop_parse),
    ("  the same with the frozen __init__", loop_init),
    ("parse_rtp, CSRCs + extension + padding", loop_parse_full),
    ("build_rtp, 160 B payload", loop_build),
    ("is_rtcp", loop_is_rtcp),
    ("SourceStats.update", loop_stats),
    ("Packetizer.push, 20 ms in (1 packet out)", loop_push(160)),
    ("Packetizer.push, 30 ms in (1.5 out)", loop_push(240)),
    ("Packetizer.push, 10 ms in (0.5 out)", loop_push(80)),
    ("DtmfReceiver.receive_packet (repeat)", loop_dtmf),
    ("ulaw_to_alaw, 160 B", loop_transcode),
    ("payload_dbov, 160 B", loop_level(1)),
    ("payload_dbov, 160 B, every 4th byte", loop_level(4)),
]


def main() -> None:
    print(f"python {sys.version.split()[0]} on {platform.machine()}; budget {BUDGET_NS} ns/packet")
    print(f"{'case':<44}{'ns/op':>10}{'budget':>9}")
    for name, fn in CASES:
        ns = best(fn)
        print(f"{name:<44}{ns:>10,.0f}{ns / BUDGET_NS:>9.1%}")


if __name__ == "__main__":
    main()
