"""The media anchor: RTP ports that receive and drop media and send nothing.

The bridge is signalling only; its SDP answers must still name a live port, or softphones see ICMP
"port unreachable" for every packet and some of them end the call. Because nothing is ever sent and
what arrives is dropped, every call can share the same ports: one socket pair for audio (RTP and
RTCP, RFC 3550 §11) and one for video. This keeps 50,000 calls to four file descriptors instead of a
socket per call, and an allocation costs nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from .relay import bind_udp

log = structlog.get_logger("bridge.media")


@dataclass(frozen=True, slots=True)
class AnchorPort:
    port: int
    """The audio RTP port (even); RTCP is ``port + 1``, video RTP and RTCP ``port + 2`` and ``+ 3``."""


class _Sink(asyncio.DatagramProtocol):
    def __init__(self, anchor: MediaAnchor) -> None:
        self._anchor = anchor

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._anchor.packets += 1
        self._anchor.octets += len(data)

    def error_received(self, exc: Exception) -> None:
        pass  # we never send, so errors are only stale ICMP; nothing depends on them


class MediaAnchor:
    """Four UDP ports shared by every call, bound inside ``[port_min, port_max]``."""

    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        self.host = host
        self._range = (port_min + (port_min & 1), port_max)
        self._transports: list[asyncio.DatagramTransport] = []
        self._port: AnchorPort | None = None
        self.packets = 0
        self.octets = 0

    async def start(self) -> AnchorPort:
        loop = asyncio.get_running_loop()
        first, last = self._range
        for base in range(first, last - 2, 2):
            sockets = bind_udp(self.host, range(base, base + 4))
            if sockets is None:
                continue
            for sock in sockets:
                transport, _ = await loop.create_datagram_endpoint(lambda: _Sink(self), sock=sock)
                self._transports.append(transport)
            self._port = AnchorPort(base)
            log.info("media anchor listening", host=self.host, port=base)
            return self._port
        raise OSError(f"no four consecutive free UDP ports in {first}-{last} on {self.host}")

    async def allocate(self, host: str) -> AnchorPort:
        if self._port is None:
            raise RuntimeError("media anchor not started")
        return self._port

    def release(self, port: object) -> None:
        """Shared ports outlive calls: nothing to release."""

    def close(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()
