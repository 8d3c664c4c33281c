"""Configuration: TOML loaded once into frozen dataclasses, validated with messages that name the file,
the key and what was expected. Nothing here is global: ``bridge/app.py`` passes it down.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import ssl
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..sip.address import Transport, host_text
from .auth import AuthConfig, read_auth
from .calls import CallsConfig, read_calls, read_dialplan
from .values import ConfigError
from .values import get as _get
from .values import host as _host
from .values import known as _known
from .values import path as _path
from .values import port as _port
from .values import seconds as _seconds
from .values import table as _table

if TYPE_CHECKING:
    from ..conference.server.config import ServerConfig

DEFAULT_PORTS = {Transport.UDP: 5060, Transport.TCP: 5060, Transport.TLS: 5061}
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
        Listen(Transport.UDP, "127.0.0.1", 5060),
        Listen(Transport.TCP, "127.0.0.1", 5060),
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
    """Server and User-Agent header value."""
    version_header: str = "spacesVersion"
    """Request header carrying the endpoint's Spaces client version (case-insensitive)."""
    timer_t1_ms: int = 500
    """RFC 3261 T1 (round-trip estimate): retransmissions start at T1 and transactions that get no
    answer end after 64*T1. Lower it only on networks known to be faster."""
    workers: int = 1
    """Processes that serve the listeners together (1-64; SO_REUSEPORT lets the kernel spread
    phones over them). More than one needs a remote conference server; each worker takes its own
    slice of the media port range and serves the operations endpoint on its port + its index."""


@dataclass(frozen=True, slots=True)
class MediaConfig:
    host: str = "127.0.0.1"
    """Address of the media anchor written in our SDP (c=) and bound for RTP."""
    port_min: int = 20000
    """First RTP port of the anchor's range (even)."""
    port_max: int = 20999
    """Last RTP port of the anchor's range."""

    def share(self, index: int, count: int) -> MediaConfig:
        """Worker ``index``'s part of the range when ``count`` workers split it: equal and
        disjoint, so that two anchors never race for the same ports."""
        size = (self.port_max - self.port_min + 1) // count
        first = self.port_min + index * size
        return replace(self, port_min=first, port_max=first + size - 1)


@dataclass(frozen=True, slots=True)
class DrainConfig:
    grace_seconds: float = 5.0
    """On SIGTERM: how long established calls may go on before the bridge sends BYE."""
    bye_wait_seconds: float = 2.0
    """After sending BYE: how long to wait for the phones' answers before exiting."""


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Per-source protection before the SIP stack (SPEC §10)."""

    rate_per_source: float = 1000.0
    """Messages per second one source address may send (0: no limit); beyond, they are dropped."""
    burst_per_source: float = 2000.0
    invites_per_source: float = 50.0
    """New INVITEs per second one source may send (0: no limit); beyond, they are dropped."""
    invite_burst_per_source: float = 100.0
    drop_scanners: bool = True
    """Drop requests whose User-Agent is a known SIP scanner, without an answer."""
    max_transactions: int = 50_000
    """Open server transactions before new requests get 503 with Retry-After."""
    max_dialogs: int = 60_000
    """Established and early dialogs before new INVITEs get 503 with Retry-After."""
    lobby_per_space: int = 100
    """Callers waiting in one space's lobby before more get 480 ``Lobby Full``."""
    max_joining: int = 100
    """Calls waiting for the conference server's answer before more INVITEs get 503."""


@dataclass(frozen=True, slots=True)
class OpsConfig:
    """The operations endpoint: ``/metrics``, ``/healthz``, ``/readyz``."""

    listen: str | None = "127.0.0.1:9091"
    """``host:port`` to serve on; an empty string turns it off."""
    json_logs: bool = False
    """JSON lines (for collectors) instead of key=value lines."""
    log_level: str = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""
    sip_trace: bool = False
    """Log every SIP message in and out (Authorization headers redacted); for debugging only."""

    @property
    def address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def share(self, index: int) -> OpsConfig:
        """Worker ``index``'s endpoint: the configured port + ``index`` (port 0 stays "any")."""
        address = self.address
        if address is None or index == 0 or address[1] == 0:
            return self
        host, port = address
        return replace(self, listen=f"{host_text(host)}:{port + index}")


@dataclass(frozen=True, slots=True)
class ConferenceConfig:
    """Where the conference server is: embedded (no ``url``) or remote."""

    url: str | None = None
    """Base URL of a remote server (``http://host:port``); absent = run the embedded server."""
    token: str | None = field(default=None, repr=False)
    """The bridge's bearer token for a remote server (from ``token_file`` or ``token_env``)."""
    request_timeout_seconds: float = 5.0
    """Per-request timeout of REST calls."""


@dataclass(frozen=True, slots=True)
class Config:
    source: str = "<defaults>"
    """Where this configuration came from (for messages)."""
    sip: SipConfig = field(default_factory=SipConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    drain: DrainConfig = field(default_factory=DrainConfig)
    conference: ConferenceConfig = field(default_factory=ConferenceConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    dialplan: Mapping[str, str] = field(default_factory=dict)
    """Request-URI user → space id aliases (``[dialplan]`` table)."""
    server: ServerConfig | None = None
    """The ``[server]`` table: the embedded conference server's settings (default: a demo space)."""
    worker: int | None = None
    """This process's index among ``sip.workers`` (given on the command line by the supervisor,
    never in the file); None when one process serves the listeners alone."""

    def for_worker(self, index: int) -> Config:
        """What worker ``index`` of ``sip.workers`` runs with: its media slice and ops port."""
        count = self.sip.workers
        if not 0 <= index < count:
            raise ValueError(f"worker {index} of {count}")
        return replace(
            self, media=self.media.share(index, count), ops=self.ops.share(index), worker=index
        )


def load(path: str | pathlib.Path | None) -> Config:
    """Read and validate a TOML file; ``None`` gives the built-in defaults."""
    if path is None:
        return Config()
    source = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(source, "-", f"cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "-", f"not valid TOML: {exc}") from exc
    return from_mapping(data, source)


def from_mapping(data: Mapping[str, Any], source: str) -> Config:
    tables = (
        "sip", "media", "drain", "conference", "calls", "dialplan", "server", "ops", "auth", "limits"
    )  # fmt: skip
    _known(data, tables, source, "")
    sip_data = _table(data, "sip", source)
    _known(
        sip_data,
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
    t1 = _get(sip_data, "timer_t1_ms", int, source, "sip.", 500)
    if not 10 <= t1 <= 5000:
        raise ConfigError(source, "sip.timer_t1_ms", "expected milliseconds from 10 to 5000")
    workers = _get(sip_data, "workers", int, source, "sip.", 1)
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(source, "sip.workers", f"expected processes from 1 to {MAX_WORKERS}")
    cert = _path(sip_data, "tls_certificate", source, "sip.")
    key = _path(sip_data, "tls_private_key", source, "sip.")
    if (cert is None) != (key is None):
        raise ConfigError(source, "sip.tls_private_key", "TLS needs both a certificate and a key")
    client_ca, verify_client = _client_verification(sip_data, source, cert is not None)
    listen = tuple(
        _listen(item, source, f"sip.listen[{i}]")
        for i, item in enumerate(
            _get(
                sip_data,
                "listen",
                list,
                source,
                "sip.",
                ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"],
            )
        )
    )
    if not listen:
        raise ConfigError(source, "sip.listen", "at least one listener is needed")
    if cert is not None and not any(item.transport is Transport.TLS for item in listen):
        listen = (*listen, Listen(Transport.TLS, listen[0].host, 5061))
    if cert is None and any(item.transport is Transport.TLS for item in listen):
        raise ConfigError(source, "sip.listen", "a tls listener needs sip.tls_certificate")
    advertise = _get(sip_data, "advertise", str, source, "sip.", None)
    if advertise is not None:
        advertise = _host(advertise, source, "sip.advertise")
    if advertise is None and any(ipaddress.ip_address(item.host).is_unspecified for item in listen):
        # Via and Contact must name an address phones can reach; 0.0.0.0 is not one.
        raise ConfigError(
            source, "sip.advertise", "required when a listener binds 0.0.0.0 or :: (all addresses)"
        )
    sip = SipConfig(
        listen=listen,
        advertise=advertise,
        tls_certificate=cert,
        tls_private_key=key,
        tls_client_ca=client_ca,
        tls_verify_client=verify_client,
        user_agent=_get(sip_data, "user_agent", str, source, "sip.", "spaces-bridge"),
        version_header=_get(sip_data, "version_header", str, source, "sip.", "spacesVersion"),
        timer_t1_ms=t1,
        workers=workers,
    )
    media_data = _table(data, "media", source)
    _known(media_data, ("host", "port_min", "port_max"), source, "media.")
    media = MediaConfig(
        host=_host(
            _get(media_data, "host", str, source, "media.", "127.0.0.1"), source, "media.host"
        ),
        port_min=_port(
            _get(media_data, "port_min", int, source, "media.", 20000), source, "media.port_min"
        ),
        port_max=_port(
            _get(media_data, "port_max", int, source, "media.", 20999), source, "media.port_max"
        ),
    )
    if ipaddress.ip_address(media.host).is_unspecified:
        # The host is written in our SDP's c= line, where 0.0.0.0 means "on hold" (RFC 3264 §8.4).
        raise ConfigError(
            source, "media.host", "expected the address phones send RTP to, not 0.0.0.0"
        )
    if media.port_min > media.port_max:
        raise ConfigError(source, "media.port_max", "must not be below media.port_min")
    if media.port_max - media.port_min < 4:
        # The anchor binds four consecutive ports from an even one (RTP and RTCP, audio and video).
        raise ConfigError(source, "media.port_max", "the range needs at least 5 ports")
    drain_data = _table(data, "drain", source)
    _known(drain_data, ("grace_seconds", "bye_wait_seconds"), source, "drain.")
    drain = DrainConfig(
        grace_seconds=_seconds(drain_data, "grace_seconds", source, 5.0),
        bye_wait_seconds=_seconds(drain_data, "bye_wait_seconds", source, 2.0),
    )
    config = Config(
        source=source,
        sip=sip,
        media=media,
        drain=drain,
        conference=_conference(_table(data, "conference", source), source),
        ops=_ops(_table(data, "ops", source), source),
        auth=read_auth(_table(data, "auth", source), source),
        limits=_limits(_table(data, "limits", source), source),
        calls=read_calls(_table(data, "calls", source), source),
        dialplan=read_dialplan(_table(data, "dialplan", source), source),
        server=_server(data, source),
    )
    _check_workers(config)
    return config


def _check_workers(config: Config) -> None:
    """What sharing the listeners among several processes needs (docs/decisions.md)."""
    count, source = config.sip.workers, config.source
    if count == 1:
        return
    if sys.platform != "linux":
        # Elsewhere SO_REUSEPORT does not spread datagrams over the sockets, and the supervisor
        # relies on pidfds and PR_SET_PDEATHSIG.
        raise ConfigError(source, "sip.workers", "more than one worker needs Linux")
    if config.conference.url is None:
        # The embedded server's meetings live in one process's memory; workers could not share them.
        raise ConfigError(
            source,
            "sip.workers",
            f"{count} workers need a remote conference server (conference.url): "
            "the embedded one cannot be shared between processes",
        )
    for i, item in enumerate(config.sip.listen):
        if item.port == 0:
            raise ConfigError(
                source, f"sip.listen[{i}]", "port 0 cannot be shared: each worker would get its own"
            )
    media = config.media
    if (media.port_max - media.port_min + 1) // count < 5:
        raise ConfigError(
            source,
            "media.port_max",
            f"the range needs at least 5 ports per worker ({5 * count} for {count} workers)",
        )
    address = config.ops.address
    if address is not None and address[1] and address[1] + count - 1 > 65535:
        raise ConfigError(
            source, "ops.listen", f"{count} workers need ports up to port + {count - 1}"
        )


def _client_verification(
    sip_data: Mapping[str, Any], source: str, has_tls: bool
) -> tuple[pathlib.Path | None, ClientVerify]:
    client_ca = _path(sip_data, "tls_client_ca", source, "sip.")
    text = _get(sip_data, "tls_verify_client", str, source, "sip.", "none")
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


def _server(data: Mapping[str, Any], source: str) -> ServerConfig | None:
    if "server" not in data:
        return None
    if _table(data, "conference", source).get("url") is not None:
        raise ConfigError(
            source, "server", "configures the embedded server; not with conference.url"
        )
    # Late import: bridge.conference.server.config builds on this module (ConfigError, helpers).
    from ..conference.server.config import ServerConfig  # noqa: PLC0415

    return ServerConfig.from_mapping(_table(data, "server", source), source)


def _conference(data: Mapping[str, Any], source: str) -> ConferenceConfig:
    _known(
        data, ("url", "token_file", "token_env", "request_timeout_seconds"), source, "conference."
    )
    url = _get(data, "url", str, source, "conference.", None)
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(
            source, "conference.url", f"expected an http:// or https:// URL, got {url!r}"
        )
    token = _secret(data, source, "conference.")
    if url is not None and token is None:
        raise ConfigError(
            source,
            "conference.token_file",
            "a remote server needs the bridge's token (token_file or token_env)",
        )
    if url is None and token is not None:
        raise ConfigError(source, "conference.url", "a token is only used with a remote server url")
    timeout = _seconds(data, "request_timeout_seconds", source, 5.0, "conference.")
    if timeout <= 0:
        raise ConfigError(source, "conference.request_timeout_seconds", "expected seconds > 0")
    return ConferenceConfig(
        url=url.rstrip("/") if url else None, token=token, request_timeout_seconds=timeout
    )


def _limits(data: Mapping[str, Any], source: str) -> LimitsConfig:
    rates = {
        "rate_per_source": 1000.0,
        "burst_per_source": 2000.0,
        "invites_per_source": 50.0,
        "invite_burst_per_source": 100.0,
    }
    counts: dict[str, Any] = {
        "max_transactions": 50_000,
        "max_dialogs": 60_000,
        "lobby_per_space": 100,
        "max_joining": 100,
    }
    _known(data, (*rates, "drop_scanners", *counts), source, "limits.")
    numbers: dict[str, Any] = {}
    for key, default in rates.items():
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(source, "limits." + key, "expected a number of messages >= 0")
        numbers[key] = float(value)
    for rate, burst in (
        ("rate_per_source", "burst_per_source"),
        ("invites_per_source", "invite_burst_per_source"),
    ):
        if numbers[rate] and numbers[burst] < 1:
            raise ConfigError(source, "limits." + burst, "expected at least 1 message")
    scanners = _get(data, "drop_scanners", bool, source, "limits.", True)
    for key, default in counts.items():
        value = _get(data, key, int, source, "limits.", default)
        if value < 1:
            raise ConfigError(source, "limits." + key, "expected a count >= 1")
        counts[key] = value
    return LimitsConfig(drop_scanners=scanners, **numbers, **counts)


def _ops(data: Mapping[str, Any], source: str) -> OpsConfig:
    _known(data, ("listen", "json_logs", "log_level", "sip_trace"), source, "ops.")
    listen = _get(data, "listen", str, source, "ops.", "127.0.0.1:9091")
    if listen:
        host, _, port = listen.rpartition(":")
        if not port.isdigit():
            raise ConfigError(source, "ops.listen", f'expected "host:port", got {listen!r}')
        _host(host, source, "ops.listen")
        _port(int(port), source, "ops.listen")
    json_logs = _get(data, "json_logs", bool, source, "ops.", False)
    sip_trace = _get(data, "sip_trace", bool, source, "ops.", False)
    level = _get(data, "log_level", str, source, "ops.", "info").lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(source, "ops.log_level", "expected debug, info, warning or error")
    return OpsConfig(
        listen=listen or None, json_logs=json_logs, log_level=level, sip_trace=sip_trace
    )


def _secret(data: Mapping[str, Any], source: str, prefix: str) -> str | None:
    """A token read from a file or an environment variable: never inline in the configuration."""
    file = _get(data, "token_file", str, source, prefix, None)
    env = _get(data, "token_env", str, source, prefix, None)
    if file is not None and env is not None:
        raise ConfigError(source, prefix + "token_env", "give token_file or token_env, not both")
    if file is not None:
        try:
            value = pathlib.Path(file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                source, prefix + "token_file", f"cannot read {file}: {exc.strerror}"
            ) from exc
        if not value:
            raise ConfigError(source, prefix + "token_file", f"{file} is empty")
        return value
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ConfigError(
                source, prefix + "token_env", f"environment variable {env} is not set"
            )
        return value
    return None


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


__all__ = [
    "DEFAULT_PORTS",
    "MAX_WORKERS",
    "AuthConfig",
    "CallsConfig",
    "ClientVerify",
    "ConferenceConfig",
    "Config",
    "ConfigError",
    "DrainConfig",
    "LimitsConfig",
    "Listen",
    "MediaConfig",
    "OpsConfig",
    "SipConfig",
    "from_mapping",
    "load",
]
