"""``[media]``: where the bridge anchors the calls' RTP."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .values import ConfigError
from .values import get as _get
from .values import host as _host
from .values import known as _known
from .values import port as _port


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


_DEFAULT = MediaConfig()


def read_media(data: Mapping[str, Any], source: str) -> MediaConfig:
    _known(data, ("host", "port_min", "port_max"), source, "media.")
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
