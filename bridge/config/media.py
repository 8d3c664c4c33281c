"""``[media]``: where the bridge anchors the calls' RTP."""

from __future__ import annotations

import ipaddress
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..media.prompts import PromptError, recordings
from .values import ConfigError
from .values import get as _get
from .values import host as _host
from .values import known as _known
from .values import port as _port

PORTS_PER_CALL = 4
"""A relayed call's block: the phone leg's RTP and RTCP (RFC 3550 §11: an even port and the next),
the meeting leg's RTP, and its RTCP port kept free."""


@dataclass(frozen=True, slots=True)
class MediaConfig:
    host: str = "127.0.0.1"
    """Address written in our SDP (c=) and bound for RTP: the phones send their audio here."""
    port_min: int = 20000
    """First port of the range the bridge binds RTP and RTCP in."""
    port_max: int = 29999
    """Last port of that range."""
    relay: bool = True
    """Relay each call's audio between the phone and the meeting (a block of four ports per call:
    the phone's RTP and RTCP, the meeting's RTP and a spare for its RTCP). ``false``: signalling
    only, for operators who anchor media elsewhere; every call then shares four ports that
    receive and drop."""
    prompts: bool = True
    """Play short spoken prompts to the phone (muted, unmuted, hand raised or lowered, waiting in
    the lobby, meeting ended); only with ``relay``."""
    prompts_dir: pathlib.Path | None = None
    """An operator's own recordings (another language, another voice): each ``<prompt>.pcmu`` or
    ``.pcma`` file in it is played instead of the bridge's own; the others stay (docs/media.md)."""

    @property
    def relay_capacity(self) -> int:
        """Calls the range can relay at once: one block of four ports (from an even one) each."""
        first = self.port_min + (self.port_min & 1)
        return max(0, (self.port_max - first + 1) // PORTS_PER_CALL)

    def share(self, index: int, count: int) -> MediaConfig:
        """Worker ``index``'s part of the range when ``count`` workers split it: equal and
        disjoint, so that two anchors never race for the same ports."""
        size = (self.port_max - self.port_min + 1) // count
        first = self.port_min + index * size
        return replace(self, port_min=first, port_max=first + size - 1)


_DEFAULT = MediaConfig()


def read_media(data: Mapping[str, Any], source: str) -> MediaConfig:
    _known(
        data, ("host", "port_min", "port_max", "relay", "prompts", "prompts_dir"), source, "media."
    )
    media = MediaConfig(
        host=_host(_get(data, "host", str, source, "media.", _DEFAULT.host), source, "media.host"),
        port_min=_port(
            _get(data, "port_min", int, source, "media.", _DEFAULT.port_min),
            source,
            "media.port_min",
        ),
        port_max=_port(
            _get(data, "port_max", int, source, "media.", _DEFAULT.port_max),
            source,
            "media.port_max",
        ),
        relay=_get(data, "relay", bool, source, "media.", _DEFAULT.relay),
        prompts=_get(data, "prompts", bool, source, "media.", _DEFAULT.prompts),
        prompts_dir=_prompts_dir(data, source),
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
    return media


def _prompts_dir(data: Mapping[str, Any], source: str) -> pathlib.Path | None:
    value = _get(data, "prompts_dir", str, source, "media.", None)
    if not value:
        return None
    folder = pathlib.Path(value)
    if not folder.is_dir():
        raise ConfigError(source, "media.prompts_dir", f"no such directory: {value}")
    try:
        recordings(folder)  # checked here, so that check-config and SIGHUP see it
    except PromptError as exc:
        raise ConfigError(source, "media.prompts_dir", str(exc)) from None
    except OSError as exc:
        raise ConfigError(source, "media.prompts_dir", f"cannot read: {exc}") from None
    return folder
