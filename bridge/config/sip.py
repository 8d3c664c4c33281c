"""``[sip]``: listeners, TLS, the names we write in messages, timers and worker processes."""

from __future__ import annotations

import ipaddress
import pathlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..sip.address import Transport, host_text
from .values import ConfigError
from .values import get as _get
from .values import host as _host
from .values import known as _known
from .values import path as _path
from .values import port as _port

DEFAULT_PORTS = {transport: transport.default_port for transport in Transport}

#: ``[sip] workers`` bound: beyond the cores of any machine the bridge is sized for, and each
#: worker holds its own connection to the conference server.
MAX_WORKERS = 64


@dataclass(frozen=True, slots=True)
class Listen:
    """One listening socket."""

    transport: Transport
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{host_text(self.host)}:{self.port}"


class ClientVerify(StrEnum):
    """``[sip] tls_verify_client``: whether the TLS listener asks phones for a certificate."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"

    @property
    def mode(self) -> ssl.VerifyMode:
        match self:
            case ClientVerify.NONE:
                return ssl.CERT_NONE
            case ClientVerify.OPTIONAL:
                return ssl.CERT_OPTIONAL
            case ClientVerify.REQUIRED:
                return ssl.CERT_REQUIRED


@dataclass(frozen=True, slots=True)
class SipConfig:
    listen: tuple[Listen, ...] = (
        Listen(Transport.UDP, "127.0.0.1", Transport.UDP.default_port),
        Listen(Transport.TCP, "127.0.0.1", Transport.TCP.default_port),
    )
    """Sockets to listen on, written ``"udp:127.0.0.1:5060"``, ``"tcp:[::1]:5060"``. A TLS listener on
    port 5061 of the first host is added when a certificate is configured and none is listed."""
    advertise: str | None = None
    """Host written in our Via and Contact; default: each listener's own host."""
    tls_certificate: pathlib.Path | None = None
    """PEM certificate chain for TLS listeners."""
    tls_private_key: pathlib.Path | None = None
    """PEM private key for the certificate (a file: secrets are never inline)."""
    tls_client_ca: pathlib.Path | None = None
    """PEM bundle of the CAs whose client certificates the TLS listener accepts."""
    tls_verify_client: ClientVerify = ClientVerify.NONE
    """``none``: no client certificate is asked for (phones authenticate with digest);
    ``optional``: asked for, and a certificate sent must chain to ``tls_client_ca``;
    ``required``: the handshake fails without such a certificate."""
    user_agent: str = "spaces-bridge"
    """How the bridge names itself: its product token (before any ``/version``) is the agent of
    our Warning headers and the user name of our SDP origins."""
    version_header: str = "spacesVersion"
    """Request header carrying the endpoint's Spaces client version (case-insensitive)."""
    timer_t1_ms: int = 500
    """RFC 3261 T1 (round-trip estimate): retransmissions start at T1 and transactions that get no
    answer end after 64*T1. Lower it only on networks known to be faster."""
    workers: int = 1
    """Processes that serve the listeners together (1-64; SO_REUSEPORT lets the kernel spread
    phones over them). More than one needs a remote conference server; each worker takes its own
    slice of the media port range and serves the operations endpoint on its port + its index."""


_DEFAULT = SipConfig()


def read_sip(data: Mapping[str, Any], source: str) -> SipConfig:
    _known(
        data,
        (
            "listen",
            "advertise",
            "tls_certificate",
            "tls_private_key",
            "tls_client_ca",
            "tls_verify_client",
            "user_agent",
            "version_header",
            "timer_t1_ms",
            "workers",
        ),
        source,
        "sip.",
    )
    t1 = _get(data, "timer_t1_ms", int, source, "sip.", _DEFAULT.timer_t1_ms)
    if not 10 <= t1 <= 5000:
        raise ConfigError(source, "sip.timer_t1_ms", "expected milliseconds from 10 to 5000")
    workers = _get(data, "workers", int, source, "sip.", _DEFAULT.workers)
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(source, "sip.workers", f"expected processes from 1 to {MAX_WORKERS}")
    cert = _path(data, "tls_certificate", source, "sip.")
    key = _path(data, "tls_private_key", source, "sip.")
    if (cert is None) != (key is None):
        raise ConfigError(source, "sip.tls_private_key", "TLS needs both a certificate and a key")
    client_ca, verify_client = _client_verification(data, source, cert is not None)
    default_listen = [str(item) for item in _DEFAULT.listen]
    listen = tuple(
        _listen(item, source, f"sip.listen[{i}]")
        for i, item in enumerate(_get(data, "listen", list, source, "sip.", default_listen))
    )
    if not listen:
        raise ConfigError(source, "sip.listen", "at least one listener is needed")
    if cert is not None and not any(item.transport is Transport.TLS for item in listen):
        listen = (*listen, Listen(Transport.TLS, listen[0].host, Transport.TLS.default_port))
    if cert is None and any(item.transport is Transport.TLS for item in listen):
        raise ConfigError(source, "sip.listen", "a tls listener needs sip.tls_certificate")
    advertise = _get(data, "advertise", str, source, "sip.", None)
    if advertise is not None:
        advertise = _host(advertise, source, "sip.advertise")
    if advertise is None and any(ipaddress.ip_address(item.host).is_unspecified for item in listen):
        # Via and Contact must name an address phones can reach; 0.0.0.0 is not one.
        raise ConfigError(
            source, "sip.advertise", "required when a listener binds 0.0.0.0 or :: (all addresses)"
        )
    return SipConfig(
        listen=listen,
        advertise=advertise,
        tls_certificate=cert,
        tls_private_key=key,
        tls_client_ca=client_ca,
        tls_verify_client=verify_client,
        user_agent=_get(data, "user_agent", str, source, "sip.", _DEFAULT.user_agent),
        version_header=_get(data, "version_header", str, source, "sip.", _DEFAULT.version_header),
        timer_t1_ms=t1,
        workers=workers,
    )


def _client_verification(
    data: Mapping[str, Any], source: str, has_tls: bool
) -> tuple[pathlib.Path | None, ClientVerify]:
    client_ca = _path(data, "tls_client_ca", source, "sip.")
    text = _get(data, "tls_verify_client", str, source, "sip.", "none")
    key = "sip.tls_verify_client"
    try:
        verify = ClientVerify(text)
    except ValueError as exc:
        raise ConfigError(
            source, key, f'expected "none", "optional" or "required", got {text!r}'
        ) from exc
    if verify is not ClientVerify.NONE and client_ca is None:
        raise ConfigError(source, key, f'"{verify}" needs sip.tls_client_ca (a PEM CA bundle)')
    if verify is ClientVerify.NONE and client_ca is not None:
        # A CA that is never consulted would look like protection to whoever reads the file.
        raise ConfigError(
            source, key, 'sip.tls_client_ca is set but unused: expected "optional" or "required"'
        )
    if verify is not ClientVerify.NONE and not has_tls:
        raise ConfigError(source, key, "client certificates need sip.tls_certificate")
    return client_ca, verify


def _listen(item: object, source: str, key: str) -> Listen:
    if not isinstance(item, str):
        raise ConfigError(source, key, 'expected "transport:host:port"')
    transport_text, _, rest = item.partition(":")
    try:
        transport = Transport(transport_text.lower())
    except ValueError as exc:
        raise ConfigError(
            source, key, f"transport must be udp, tcp or tls, got {transport_text!r}"
        ) from exc
    if rest.startswith("["):
        host, _, port_text = rest[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    port = (
        int(port_text) if port_text.isdigit() else DEFAULT_PORTS[transport] if not port_text else -1
    )
    return Listen(transport, _host(host, source, key), _port(port, source, key))
