"""SIP over UDP (RFC 3261 §18): one datagram, one message.

Responses go where :func:`bridge.sip.uas.response_destination` says (``received``/``rport``, RFC
3581); the endpoint has already chosen the address, so this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import cast

import structlog

from ..sip import Address, Transport
from .driver import SipDriver

log = structlog.get_logger("bridge.transport")

#: Receive buffer asked of the kernel. A burst of 2,000 INVITEs of ~1 KB each arrives faster than one
#: loop iteration drains it; the default 208 KiB would drop most of them before we see them.
RECEIVE_BUFFER = 4 * 1024 * 1024

#: Sources whose Address is kept for reuse; past this many the table starts again.
SOURCES_KEPT = 4096


def open_udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound, non-blocking UDP socket with a large receive buffer (IPv6 sockets v6-only, so that
    ``0.0.0.0`` and ``::`` can both be listened on). ``reuse_port``: the port is shared with the
    other worker processes, and the kernel hands each datagram to one of them by a hash of its
    addresses, so that one phone's datagrams keep reaching the same worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        _grow_receive_buffer(sock)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _grow_receive_buffer(sock: socket.socket) -> None:
    # SO_RCVBUFFORCE passes net.core.rmem_max when we have CAP_NET_ADMIN; otherwise the kernel caps
    # SO_RCVBUF at rmem_max, which operators can raise (docs/operations).
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < RECEIVE_BUFFER:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


class UdpListener(asyncio.DatagramProtocol):
    """One bound UDP socket feeding the driver."""

    def __init__(self, driver: SipDriver) -> None:
        self._driver = driver
        self._transport: asyncio.DatagramTransport | None = None
        self.family = socket.AF_INET
        # One Address per source, shared by its messages and the calls that keep it: the calls of
        # an SBC or a proxy all come from one address, and each would otherwise hold its own copy.
        self._sources: dict[tuple[str | object, ...], Address] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio's classes.
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.family = sock.family

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        source = self._sources.get(addr)
        if source is None:
            host, port = addr[0], addr[1]
            assert isinstance(host, str) and isinstance(port, int)
            if len(self._sources) >= SOURCES_KEPT:
                self._sources.clear()  # many sources (a scan): start again rather than grow
            source = self._sources[addr] = Address(Transport.UDP, host, port)
        self._driver.receive(data, source)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like, reported on a later send: nothing to do per message;
        # the transaction's timers handle the loss.
        log.debug("udp error", error=str(exc))

    def send(self, data: bytes, dest: Address) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        transport.sendto(data, (dest.host, dest.port))
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class UdpSender:
    """All UDP listeners as one :class:`~bridge.transport.driver.Sender`: a datagram leaves from
    the first listener of the destination's address family."""

    def __init__(self) -> None:
        self._by_family: dict[int, UdpListener] = {}

    def add(self, listener: UdpListener) -> None:
        self._by_family.setdefault(listener.family, listener)

    def send(self, data: bytes, dest: Address) -> bool:
        family = socket.AF_INET6 if ":" in dest.host else socket.AF_INET
        listener = self._by_family.get(family)
        return listener is not None and listener.send(data, dest)


async def listen_udp(
    driver: SipDriver, host: str, port: int, *, reuse_port: bool = False
) -> UdpListener:
    loop = asyncio.get_running_loop()
    sock = open_udp_socket(host, port, reuse_port=reuse_port)
    _, protocol = await loop.create_datagram_endpoint(lambda: UdpListener(driver), sock=sock)
    return protocol
