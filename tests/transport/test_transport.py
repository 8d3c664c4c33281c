"""The asyncio transports over real loopback sockets: UDP, TCP framing, keep-alives and limits.

The daemon's parts run in-process here (cheap and real); tests/interop/ drives the daemon process.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from bridge.app import Bridge
from bridge.config import Config, Listen, MediaConfig, SipConfig
from bridge.sip.address import Address, Transport
from bridge.sip.message import Response
from bridge.sip.parser import StreamFramer, parse_message
from bridge.transport.stream import StreamLimits
from bridge.transport.udp import SOURCES_KEPT, UdpListener
from tests.interop.harness import free_port

HOST = "127.0.0.1"


def options(port: int, branch: str, *, transport: str = "UDP") -> bytes:
    return (
        f"OPTIONS sip:ping@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {HOST}:{port};branch=z9hG4bK{branch};rport\r\n"
        f"From: <sip:probe@{HOST}>;tag=p{branch}\r\nTo: <sip:ping@{HOST}>\r\n"
        f"Call-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def run_bridge(test: Callable[[Bridge, int], Awaitable[None]]) -> None:
    port = free_port()
    media = free_port(both=False) & ~1
    config = Config(
        sip=SipConfig(
            listen=(Listen(Transport.UDP, HOST, port), Listen(Transport.TCP, HOST, port))
        ),
        media=MediaConfig(host=HOST, port_min=media, port_max=media + 100),
    )

    async def main() -> None:
        bridge = Bridge(config, asyncio.get_running_loop())
        await bridge.start()
        try:
            await test(bridge, port)
        finally:
            await bridge.close()

    asyncio.run(main())


async def read_responses(reader: asyncio.StreamReader, count: int) -> list[Response]:
    framer = StreamFramer()
    out: list[Response] = []
    while len(out) < count:
        framer.feed(await asyncio.wait_for(reader.read(65535), 5))
        while isinstance(frame := framer.next_frame(), bytes):
            message = parse_message(frame, datagram=False)
            assert isinstance(message, Response)
            out.append(message)
    return out


def test_udp_options_answered_to_the_source_port() -> None:
    async def test(bridge: Bridge, port: int) -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            sock.setblocking(False)
            # The Via names another port: with rport the answer must come back to where we sent from.
            await loop.sock_sendto(sock, options(9, "udp1"), (HOST, port))
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
            local_port = sock.getsockname()[1]
        response = parse_message(data)
        assert isinstance(response, Response)
        assert response.status == 200
        assert "INVITE" in (response.headers.get("allow") or "")
        assert response.top_via.rport == local_port
        assert response.top_via.received == HOST

    run_bridge(test)


def test_tcp_frames_split_and_joined_messages() -> None:
    async def test(bridge: Bridge, port: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        local = writer.get_extra_info("sockname")[1]
        # Two messages in one segment, then one in three pieces that cut the header block.
        writer.write(options(local, "a", transport="TCP") + options(local, "b", transport="TCP"))
        third = options(local, "c", transport="TCP")
        for piece in (third[:7], third[7:90], third[90:]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        responses = await read_responses(reader, 3)
        assert [r.status for r in responses] == [200, 200, 200]
        assert [r.call_id for r in responses] == ["a@probe", "b@probe", "c@probe"]
        writer.close()

    run_bridge(test)


def test_tcp_keepalive_ping_gets_pong() -> None:
    async def test(bridge: Bridge, port: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"  # RFC 5626 §3.5.1
        writer.close()

    run_bridge(test)


def test_tcp_framing_error_closes_only_that_connection() -> None:
    async def test(bridge: Bridge, port: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: many\r\n\r\n")
        assert await asyncio.wait_for(reader.read(100), 5) == b""  # closed by the bridge
        writer.close()
        reader2, writer2 = await asyncio.open_connection(HOST, port)
        writer2.write(options(writer2.get_extra_info("sockname")[1], "after", transport="TCP"))
        (response,) = await read_responses(reader2, 1)
        assert response.status == 200
        writer2.close()

    run_bridge(test)


def test_connections_per_source_are_capped() -> None:
    async def test(bridge: Bridge, port: int) -> None:
        server = bridge._streams[Transport.TCP]
        server.limits = StreamLimits(max_per_source=2)
        kept = [await asyncio.open_connection(HOST, port) for _ in range(2)]
        reader, writer = await asyncio.open_connection(HOST, port)
        assert await asyncio.wait_for(reader.read(100), 5) == b""  # the third is closed at once
        assert server.refused == 1
        assert server.connection_count == 2
        for _, w in kept:
            w.close()
        writer.close()

    run_bridge(test)


def test_idle_connections_are_closed() -> None:
    async def test(bridge: Bridge, port: int) -> None:
        server = bridge._streams[Transport.TCP]
        server.limits = StreamLimits(idle_timeout=0.2)
        reader, writer = await asyncio.open_connection(HOST, port)
        await asyncio.sleep(0.05)
        server._sweep()  # what the periodic sweep does; not yet idle
        assert server.connection_count == 1
        await asyncio.sleep(0.3)
        server._sweep()
        assert await asyncio.wait_for(reader.read(100), 5) == b""
        writer.close()

    run_bridge(test)


class _Recorder:
    """A driver that keeps the sources the listener hands it."""

    def __init__(self) -> None:
        self.sources: list[Address] = []

    def receive(self, data: bytes, source: Address) -> None:
        self.sources.append(source)


def test_udp_sources_share_one_address_each_and_the_table_is_bounded() -> None:
    driver = _Recorder()
    listener = UdpListener(driver)  # type: ignore[arg-type]
    listener.datagram_received(b"a", ("127.0.0.1", 5060))
    listener.datagram_received(b"b", ("127.0.0.1", 5060))
    listener.datagram_received(b"c", ("127.0.0.1", 5062))
    first, again, other = driver.sources
    assert first is again and first == Address(Transport.UDP, "127.0.0.1", 5060)
    assert other == Address(Transport.UDP, "127.0.0.1", 5062)
    for port in range(SOURCES_KEPT + 10):  # a scan from many ports: the table never grows past
        listener.datagram_received(b"x", ("127.0.0.2", port))
        assert len(listener._sources) <= SOURCES_KEPT
