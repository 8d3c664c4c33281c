"""Where a message came from or goes to: a transport and a peer's host and port."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"

    @property
    def reliable(self) -> bool:
        """Stream transports need no retransmission timers (RFC 3261 §17.1.1.2)."""
        return self is not Transport.UDP

    @property
    def via_name(self) -> str:
        return self.value.upper()

    @property
    def default_port(self) -> int:
        """The port a URI or Via without one means (RFC 3261 §19.1.2, §18.2.2)."""
        return 5061 if self is Transport.TLS else 5060


def host_text(host: str) -> str:
    """``host`` as written in a URI, Via or listen address: IPv6 in brackets (RFC 3261 §25.1)."""
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True, slots=True)
class Address:
    """A peer: for UDP the datagram source, for TCP/TLS the remote end of a connection.

    Over a stream transport, sending to the Address of an open connection reuses that connection
    (RFC 3261 §18.2.2); the transport adapter owns the connection table.
    """

    transport: Transport
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{host_text(self.host)}:{self.port}"
