"""SIP over TCP and TLS (RFC 3261 §18, RFC 5630 for TLS): messages framed by Content-Length.

Each accepted connection is keyed by the peer's address, so that responses and in-dialog requests
to that peer reuse it (§18.2.2; phones on TCP/TLS rarely accept inbound connections). Bounds, each a
security limit: connections per source address and in total, bytes queued toward a peer that does
not read, and how long a connection may stay silent.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import structlog

from ..sip import (
    KEEPALIVE_PING,
    KEEPALIVE_PONG,
    Address,
    RemoteProtocolError,
    StreamFramer,
    Transport,
)
from .driver import SipDriver

log = structlog.get_logger("bridge.transport")


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_per_source: int = 32
    """Open connections from one IP address. A phone needs one; a PBX trunk a handful. Beyond
    this the new connection is closed at once, so one host cannot exhaust file descriptors."""
    max_total: int = 10_000
    """Open connections in all. Sized for the dialog target with room, below common fd limits."""
    idle_timeout: float = 900.0
    """Seconds without a byte in either direction before we close. Phones keep flows open with
    CRLF keep-alives (RFC 5626 §3.5.1) or re-INVITEs well within this."""
    max_write_buffer: int = 1024 * 1024
    """Bytes queued toward a peer that does not read before we give up on the connection."""
    handshake_timeout: float = 10.0
    """TLS handshake deadline: a client that opens a socket and says nothing holds no slot for long."""


def server_tls_context(
    certificate: str,
    private_key: str,
    *,
    client_ca: str | None = None,
    verify_client: ssl.VerifyMode = ssl.CERT_NONE,
) -> ssl.SSLContext:
    """TLS server context: TLS 1.2 minimum (RFC 8996 deprecates 1.0 and 1.1). With
    ``verify_client`` CERT_OPTIONAL or CERT_REQUIRED, clients are asked for a certificate that must
    chain to ``client_ca`` (mutual TLS). A bad one, or none under CERT_REQUIRED, fails the
    handshake: such a peer never reaches the SIP layer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, private_key)
    if verify_client is not ssl.CERT_NONE:
        if client_ca is None:
            raise ValueError("client certificate verification needs a CA bundle")
        context.load_verify_locations(cafile=client_ca)
    context.verify_mode = verify_client
    return context


class StreamConnection(asyncio.Protocol):
    """One accepted TCP or TLS connection. TLS is set up here, after admission, rather than by the
    listener: a connection refused by the limits costs no handshake, and a failed handshake can be
    counted (asyncio's listener reports one only in debug mode)."""

    def __init__(self, server: StreamServer) -> None:
        self._server = server
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._ready = False  # TLS: not before the handshake, so that nothing is sent in clear
        self.address: Address | None = None
        self.last_active = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio's classes.
        stream = self._transport = cast(asyncio.Transport, transport)
        peer = stream.get_extra_info("peername")
        self.address = Address(self._server.kind, str(peer[0]), int(peer[1]))
        self.last_active = self._server.now()
        if not self._server.admit(self):
            stream.abort()
        elif self._server.tls is None:
            self._ready = True
        else:
            self._start_tls(stream, self._server.tls)

    def _start_tls(self, plain: asyncio.Transport, context: ssl.SSLContext) -> None:
        """Put a TLS layer between the socket and this protocol, now: ``loop.start_tls`` would do it
        a turn of the loop later, and the ClientHello may come first (uvloop starts reading as soon
        as ``connection_made`` returns, whatever it paused). The layer reports the handshake's end
        through ``waiter``; this protocol sees application data only."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        deadline: Any = self._server.limits.handshake_timeout  # seconds; typeshed says int only
        layer = sslproto.SSLProtocol(
            loop,
            self,
            context,
            waiter,
            server_side=True,
            call_connection_made=False,
            ssl_handshake_timeout=deadline,
        )
        plain.set_protocol(layer)
        layer.connection_made(plain)
        # What loop.start_tls returns: the transport this protocol writes to, through the layer.
        self._transport = cast(asyncio.Transport, layer._app_transport)
        waiter.add_done_callback(self._handshake_done)

    def _handshake_done(self, waiter: asyncio.Future[None]) -> None:
        exc = None if waiter.cancelled() else waiter.exception()
        if waiter.cancelled() or exc is not None:
            # The layer has closed the socket. connection_lost may or may not follow, depending
            # on when the socket's end is seen: the connection is forgotten here either way.
            self._server.handshake_failed(self, exc)
            self._transport = None
            return
        self._ready = True
        self.last_active = self._server.now()

    def data_received(self, data: bytes) -> None:
        transport, address = self._transport, self.address
        if transport is None or address is None or transport.is_closing() or not self._ready:
            return
        self.last_active = self._server.now()
        framer = self._framer
        framer.feed(data)
        driver = self._server.driver
        try:
            while (frame := framer.next_frame()) is not None:
                if frame is KEEPALIVE_PING:
                    transport.write(KEEPALIVE_PONG)
                elif isinstance(frame, bytes):
                    driver.receive(frame, address)
                if transport.is_closing():
                    return
        except RemoteProtocolError as exc:
            # Framing is lost for good on a stream (RFC 3261 §18.3): nothing after this error can be
            # found reliably, so the connection ends; the endpoint never saw the broken frame.
            log.info("closing stream on framing error", peer=str(address), reason=exc.reason)
            self._server.framing_errors += 1
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.forget(self)
        self._transport = None

    def send(self, data: bytes) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing() or not self._ready:
            return False
        if transport.get_write_buffer_size() > self._server.limits.max_write_buffer:
            log.info("closing stream: peer does not read", peer=str(self.address))
            transport.abort()
            return False
        transport.write(data)
        self.last_active = self._server.now()
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class StreamServer:
    """The TCP or TLS listeners of one transport kind, and their connection table."""

    def __init__(
        self,
        driver: SipDriver,
        kind: Transport,
        limits: StreamLimits | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.driver = driver
        self.kind = kind
        self.limits = limits or StreamLimits()
        self.tls = tls
        self._connections: dict[Address, StreamConnection] = {}
        self._per_source: Counter[str] = Counter()
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self.framing_errors = 0
        self.refused = 0
        self.handshake_failures = 0

    def now(self) -> float:
        return self.driver.now()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def listen(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """``reuse_port``: shared with the other worker processes; the kernel gives each new
        connection to one of them, and the connection stays there."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: StreamConnection(self),
            host,
            port,
            reuse_address=True,
            reuse_port=reuse_port,
        )
        self._servers.append(server)
        if self._sweeper is None:
            self._schedule_sweep()

    def admit(self, connection: StreamConnection) -> bool:
        address = connection.address
        assert address is not None
        guard = self.driver.guard
        if len(self._connections) >= self.limits.max_total or (
            self._per_source[address.host] >= self.limits.max_per_source
            # A trusted proxy (docs/scale-out.md) may hold as many connections as it needs.
            and (guard is None or not guard.trusts(address.host))
        ):
            self.refused += 1
            log.info("refusing stream connection: over limit", peer=str(address))
            return False
        self._connections[address] = connection
        self._per_source[address.host] += 1
        return True

    def handshake_failed(self, connection: StreamConnection, exc: BaseException | None) -> None:
        self.handshake_failures += 1
        reason = getattr(exc, "reason", None) or type(exc).__name__
        log.info("TLS handshake failed", peer=str(connection.address), reason=str(reason))
        self.forget(connection)

    def forget(self, connection: StreamConnection) -> None:
        address = connection.address
        if address is None or self._connections.get(address) is not connection:
            return
        del self._connections[address]
        self._per_source[address.host] -= 1
        if self._per_source[address.host] <= 0:
            del self._per_source[address.host]

    def send(self, data: bytes, dest: Address) -> bool:
        connection = self._connections.get(dest)
        return connection is not None and connection.send(data)

    def _schedule_sweep(self) -> None:
        interval = max(1.0, self.limits.idle_timeout / 4)
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        cutoff = self.now() - self.limits.idle_timeout
        for connection in [c for c in self._connections.values() if c.last_active < cutoff]:
            log.info("closing idle stream", peer=str(connection.address))
            connection.close()
        self._schedule_sweep()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for server in self._servers:
            server.close()
        for connection in list(self._connections.values()):
            connection.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
