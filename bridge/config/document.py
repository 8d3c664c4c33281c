"""The whole configuration file: ``Config`` (one frozen value per table, passed down by
``bridge/app.py``; nothing here is global) and ``load``, which reads the TOML once and hands each table
to its reader. Errors name the file, the key and what was expected.
"""

from __future__ import annotations

import pathlib
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..calls.access import AuthConfig
from ..calls.settings import DEFAULT_DIALPLAN
from ..conference.server.config import ServerConfig
from ..conference.server.mixer.config import JanusConfig
from .auth import read_auth
from .calls import CallsConfig, read_calls, read_dialplan
from .conference import ConferenceConfig, read_conference
from .drain import DrainConfig, read_drain
from .limits import LimitsConfig, read_limits
from .media import MediaConfig, read_media
from .media_server import read_media_server
from .ops import OpsConfig, read_ops
from .server import read_server
from .sip import SipConfig, read_sip
from .values import ConfigError
from .values import known as _known
from .values import table as _table

#: The file's tables, in the order the production example documents them.
TABLES = (
    "sip", "media", "drain", "conference", "calls", "dialplan", "server", "media_server", "ops",
    "auth", "limits",
)  # fmt: skip


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
    dialplan: Mapping[str, str] = field(default_factory=lambda: DEFAULT_DIALPLAN)
    """Request-URI user → space id aliases, or ``"@menu"`` (``[dialplan]`` table; without one,
    ``join`` reaches the voice menu)."""
    server: ServerConfig | None = None
    """The ``[server]`` table: the embedded conference server's settings (default: a demo space)."""
    media_server: JanusConfig | None = field(default_factory=JanusConfig)
    """The ``[media_server]`` table: the embedded server's mixer; None when disabled."""
    worker: int | None = None
    """This process's index among ``sip.workers`` (given on the command line by the supervisor,
    never in the file); None when one process serves the listeners alone."""
    tables: frozenset[str] = frozenset()
    """The tables the file has (``spaces-bridge server`` serves ``[ops]`` only when its file has
    one, so that it does not take the bridge's default port beside a bridge)."""
    warnings: tuple[str, ...] = ()
    """What the file says that is valid but probably not meant: ``check-config`` prints these, and
    the daemon logs them at start. The built-in defaults have none."""

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
    """Validate a parsed TOML document; ``source`` names it in errors."""
    _known(data, TABLES, source, "")
    config = Config(
        source=source,
        sip=read_sip(_table(data, "sip", source), source),
        media=read_media(_table(data, "media", source), source),
        drain=read_drain(_table(data, "drain", source), source),
        conference=read_conference(_table(data, "conference", source), source),
        ops=read_ops(_table(data, "ops", source), source),
        auth=read_auth(_table(data, "auth", source), source),
        limits=read_limits(_table(data, "limits", source), source),
        calls=read_calls(_table(data, "calls", source), source),
        dialplan=read_dialplan(_table(data, "dialplan", source), source)
        if "dialplan" in data
        else DEFAULT_DIALPLAN,
        server=_server(data, source),
        media_server=read_media_server(_table(data, "media_server", source), source),
    )
    _check_workers(config)
    _check_media_ports(config)
    return replace(
        config,
        tables=frozenset(data),
        warnings=_warnings(config, _table(data, "limits", source)),
    )


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


def _check_media_ports(config: Config) -> None:
    """The relay's range and the mixer's must not overlap: one would take the other's ports."""
    mixer, media = config.media_server, config.media
    if mixer is None or config.conference.url is not None:
        return
    if mixer.rtp_port_min <= media.port_max and media.port_min <= mixer.rtp_port_max:
        raise ConfigError(
            config.source,
            "media_server.rtp_port_min",
            f"{mixer.rtp_port_min}-{mixer.rtp_port_max} overlaps [media] "
            f"{media.port_min}-{media.port_max}",
        )


def _server(data: Mapping[str, Any], source: str) -> ServerConfig | None:
    if "server" not in data:
        return None
    if _table(data, "conference", source).get("url") is not None:
        raise ConfigError(
            source, "server", "configures the embedded server; not with conference.url"
        )
    return read_server(_table(data, "server", source), source)


def _warnings(config: Config, limits: Mapping[str, Any]) -> tuple[str, ...]:
    found = []
    media = config.media.share(0, config.sip.workers) if config.sip.workers > 1 else config.media
    # Only a max_dialogs the file sets can contradict the range: left at its default (sized for
    # signalling-only nodes), the range is the relayed calls' bound by design (docs/decisions.md).
    given = "max_dialogs" in limits
    if given and config.media.relay and config.limits.max_dialogs > media.relay_capacity:
        per = " per worker" if config.sip.workers > 1 else ""
        found.append(
            f"{config.source}: limits.max_dialogs: admits {config.limits.max_dialogs} calls, but "
            f"media.port_min..port_max carries {media.relay_capacity}{per} with media.relay "
            f"(4 ports a call); the others get 503 Media Ports Exhausted. Widen the range, lower "
            f"max_dialogs, or set media.relay = false"
        )
    return tuple(found)
