"""The relay's sockets on loopback (bridge/media/relay.py), without a daemon: port blocks until the
range is exhausted, freed blocks reused last, a phone → meeting → phone loop through the gates, a
prompt at the prompt clock's pace, keys read from RTP, and ports given back on close.

The phone and the meeting's mixer are plain UDP sockets of the test; packets are packed here with
``struct``, not with the bridge's own RTP code.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from bridge.media.g711 import ULAW
from bridge.media.prompts import Prompt, Prompts
from bridge.media.relay import PORTS_PER_CALL, MediaLeg, Relay

HOST = "127.0.0.1"
FRAME = 160
TONE = ULAW.from_samples(round(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(FRAME))
SILENCE = bytes([0xFF]) * FRAME
Address = tuple[str, int]


def packet(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, sequence, timestamp, ssrc) + payload


def free_range(blocks: int) -> int:
    """The first port of ``blocks`` blocks of four consecutive ports, all free now, from an even
    port."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            base = int(probe.getsockname()[1]) & ~1
        held: list[socket.socket] = []
        try:
            for port in range(base, base + PORTS_PER_CALL * blocks):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind((HOST, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return base
    raise RuntimeError("no free port range")


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


@dataclass
class Peer(asyncio.DatagramProtocol):
    """A UDP socket of the test (the phone, the mixer) that records what it receives."""

    received: list[tuple[float, Address, bytes]] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    address: Address = ("", 0)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport does not subclass DatagramTransport; it has sendto.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.address = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received.append((asyncio.get_running_loop().time(), addr[:2], data))
        self._arrived.set()

    def send(self, data: bytes, to: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)

    async def wait(self, count: int, timeout: float = 3.0) -> list[bytes]:
        """At least ``count`` datagrams received; all of them."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return [data for _, _, data in self.received]

    async def wait_loud(self, count: int, timeout: float = 3.0) -> list[bytes]:
        """At least ``count`` payloads that are not silence received; all of them."""
        async with asyncio.timeout(timeout):
            while len(self.loud()) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.loud()

    def loud(self) -> list[bytes]:
        """Payloads received that are not silence (keepalives are)."""
        return [data[12:] for _, _, data in self.received if data[12:] != SILENCE]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def peer() -> Peer:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
    return protocol


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


async def phone_leg(relay: Relay, phone: Peer) -> MediaLeg:
    """A leg whose phone is ``phone`` (PCMU, telephone-events on 101)."""
    leg = await relay.open()
    assert leg is not None
    rtcp = (phone.address[0], phone.address[1] + 1)
    leg.configure("PCMU", 0, 101, phone.address, rtcp, cname="test@relay")
    return leg


# --- ports --------------------------------------------------------------------------------------


def test_blocks_are_opened_until_the_range_is_exhausted() -> None:
    async def test() -> None:
        base = free_range(3)
        relay = Relay(HOST, base, base + 4 * 3 - 1, prompts=None)
        assert relay.capacity == 3
        legs = [await relay.open() for _ in range(3)]
        assert [leg.port if leg else None for leg in legs] == [base, base + 4, base + 8]
        assert all(leg is not None and leg.meeting_port == leg.port + 2 for leg in legs)
        # Three real sockets a call: RTP and RTCP toward the phone, RTP toward the meeting.
        for leg in legs:
            assert leg is not None
            assert not any(bindable(p) for p in (leg.port, leg.port + 1, leg.meeting_port))
        assert await relay.open() is None
        assert relay.exhausted == 1 and relay.active == 3
        relay.close()
        assert relay.active == 0

    run(test)


def test_freed_blocks_go_to_the_back_of_the_queue() -> None:
    async def test() -> None:
        base = free_range(3)
        blocks = [base, base + 4, base + 8]
        relay = Relay(HOST, base, base + 4 * 3 - 1, prompts=None)
        first = await relay.open()
        assert first is not None and first.port == blocks[0]
        first.close()
        # Late packets of the call that ended must not reach the next one: its block waits.
        order = []
        for _ in range(3):
            leg = await relay.open()
            assert leg is not None
            order.append(leg)
        assert [leg.port for leg in order] == [blocks[1], blocks[2], blocks[0]]
        order[2].close()
        order[0].close()
        await asyncio.sleep(0)  # a transport closes its socket on the loop's next turn
        again = [await relay.open(), await relay.open()]
        assert [leg.port if leg else None for leg in again] == [blocks[0], blocks[1]]
        relay.close()

    run(test)


def test_a_block_that_something_else_holds_is_skipped() -> None:
    async def test() -> None:
        base = free_range(2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind((HOST, base + 2))  # the first block's meeting-leg port
            relay = Relay(HOST, base, base + 7, prompts=None)
            leg = await relay.open()
            assert leg is not None and leg.port == base + 4
            assert bindable(base) and bindable(base + 1)  # nothing of the failed block kept
            assert await relay.open() is None
            relay.close()

    run(test)


def test_close_gives_the_ports_back() -> None:
    async def test() -> None:
        base = free_range(2)
        relay = Relay(HOST, base, base + 7, prompts=None)
        phone = await peer()
        leg = await phone_leg(relay, phone)
        other = await relay.open()
        assert other is not None
        phone.send(packet(0, 1, 0, 7, TONE), (HOST, leg.port))
        await asyncio.sleep(0.05)
        counters = leg.close()
        assert counters is not None and counters.phone_packets == 1
        assert leg.close() is None  # once
        await asyncio.sleep(0)  # a transport closes its socket on the loop's next turn
        assert all(bindable(p) for p in (leg.port, leg.port + 1, leg.meeting_port))
        assert relay.active == 1 and relay.totals.phone_packets == 1
        relay.close()
        await asyncio.sleep(0)
        assert all(bindable(p) for p in (other.port, other.port + 1, other.meeting_port))
        phone.close()

    run(test)


# --- media --------------------------------------------------------------------------------------


def test_phone_to_meeting_and_back_through_the_gates() -> None:
    async def test() -> None:
        base = free_range(1)
        relay = Relay(HOST, base, base + 3, prompts=None)
        phone, mixer, stranger = await peer(), await peer(), await peer()
        leg = await phone_leg(relay, phone)
        leg.connect_meeting(*mixer.address, "PCMU", 0)
        leg.set_gates(send=True, hear=True)
        to_leg, to_meeting = (HOST, leg.port), (HOST, leg.meeting_port)

        # The phone's 10 ms packets reach the mixer as 20 ms ones, from the meeting-leg port.
        for n in range(10):
            half = TONE[80:] if n % 2 else TONE[:80]
            phone.send(packet(0, 100 + n, 80 * n, 7, half), to_leg)
        await mixer.wait_loud(5)
        assert mixer.loud() == [TONE] * 5
        assert {addr for _, addr, _ in mixer.received} == {to_meeting}
        # The mixer's audio reaches the phone, from the phone-leg port.
        for n in range(5):
            mixer.send(packet(0, 200 + n, FRAME * n, 9, TONE), to_meeting)
        assert await phone.wait_loud(5) == [TONE] * 5
        assert {addr for _, addr, _ in phone.received} == {to_leg}
        # The meeting leg is connected: the kernel drops what anyone else sends to it.
        stranger.send(packet(0, 1, 0, 9, TONE), to_meeting)

        # Gates closed: nothing passes either way, and what was dropped is counted.
        leg.set_gates(send=False, hear=False)
        for n in range(5):
            phone.send(packet(0, 110 + n, 800 + FRAME * n, 7, TONE), to_leg)
            mixer.send(packet(0, 205 + n, FRAME * (5 + n), 9, TONE), to_meeting)
        await asyncio.sleep(0.2)
        assert len(mixer.loud()) == 5 and len(phone.loud()) == 5
        assert leg.media is not None
        assert leg.media.counters.muted == 5 and leg.media.counters.paused == 5
        assert leg.media.counters.meeting_packets == 10  # not the stranger's

        # Open again: it flows again.
        leg.set_gates(send=True, hear=True)
        phone.send(packet(0, 115, 1600, 7, TONE), to_leg)
        mixer.send(packet(0, 210, FRAME * 10, 9, TONE), to_meeting)
        assert len(await mixer.wait_loud(6)) == 6
        assert len(await phone.wait_loud(6)) == 6
        relay.close()
        for p in (phone, mixer, stranger):
            p.close()

    run(test)


def test_keys_in_rtp_reach_the_call_layer_once_each() -> None:
    async def test() -> None:
        base = free_range(1)
        relay = Relay(HOST, base, base + 3, prompts=None)
        phone = await peer()
        leg = await phone_leg(relay, phone)
        keys: list[str] = []
        leg.on_key = keys.append
        sequence = 0
        for code, timestamp in ((10, 1000), (6, 3000)):  # "*", then "6"
            for duration, end in ((160, False), (320, False), (480, True), (480, True)):
                flags = 0x80 | 10 if end else 10
                payload = struct.pack("!BBH", code, flags, duration)
                phone.send(packet(101, sequence, timestamp, 7, payload), (HOST, leg.port))
                sequence += 1
        async with asyncio.timeout(3):
            while len(keys) < 2:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)  # the end packets' repeats came in too
        assert keys == ["*", "6"]
        assert leg.media is not None and leg.media.counters.keys == 2
        relay.close()
        phone.close()

    run(test)


def test_a_prompt_reaches_the_phone_at_the_prompt_clocks_pace() -> None:
    async def test() -> None:
        base = free_range(1)
        prompts = Prompts.load()
        relay = Relay(HOST, base, base + 3, prompts=prompts)
        phone, mixer = await peer(), await peer()
        leg = await phone_leg(relay, phone)
        leg.connect_meeting(*mixer.address, "PCMU", 0)
        leg.set_gates(send=True, hear=True)
        frames = prompts.frames(Prompt.MUTED, "PCMU")

        assert leg.play(Prompt.MUTED) == len(frames) * 0.02
        # The meeting's audio pauses meanwhile.
        mixer.send(packet(0, 1, 0, 9, TONE), (HOST, leg.meeting_port))
        received = await phone.wait(len(frames))
        await asyncio.sleep(0.1)
        assert [data[12:] for data in received] == list(frames)
        assert len(phone.received) == len(frames)  # the mixer's packet did not cut in
        assert leg.media is not None and leg.media.counters.paused == 1
        times = [at for at, _, _ in phone.received]
        assert times[-1] - times[0] >= 0.02 * (len(frames) - 1) * 0.9
        sequences = [struct.unpack_from("!H", data, 2)[0] for data in received]
        assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(sequences))

        # Once it is over, the meeting's audio comes through again.
        mixer.send(packet(0, 2, FRAME, 9, TONE), (HOST, leg.meeting_port))
        await phone.wait(len(frames) + 1)
        assert phone.received[-1][2][12:] == TONE
        relay.close()
        phone.close()
        mixer.close()

    run(test)
