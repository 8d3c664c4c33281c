"""``[media_server]``: the embedded conference server's media platform, a Janus AudioBridge it starts
and supervises (docs/mixer.md).

::

    [media_server]
    enabled = true            # false: no mixer; meetings then carry no audio
    janus = "/usr/bin/janus"  # default: janus on PATH
    rtp_port_min = 30000      # AudioBridge's plain-RTP ports, one a phone
    rtp_port_max = 32767
    sampling_rate = 8000      # 8000 (clean for G.711) ... 48000
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from ..conference.server.mixer.config import SAMPLING_RATES, JanusConfig
from .values import ConfigError
from .values import get as _get
from .values import known as _known
from .values import port as _port

_DEFAULT = JanusConfig(executable=None)


def read_media_server(data: Mapping[str, Any], source: str) -> JanusConfig | None:
    """The mixer's settings; None when ``enabled = false``."""
    prefix = "media_server."
    _known(
        data, ("enabled", "janus", "rtp_port_min", "rtp_port_max", "sampling_rate"), source, prefix
    )
    if not _get(data, "enabled", bool, source, prefix, True):
        return None
    janus = _get(data, "janus", str, source, prefix, None)
    if janus is not None and not pathlib.Path(janus).is_file():
        raise ConfigError(source, prefix + "janus", f"no such file: {janus}")
    low = _port(
        _get(data, "rtp_port_min", int, source, prefix, _DEFAULT.rtp_port_min),
        source,
        prefix + "rtp_port_min",
    )
    high = _port(
        _get(data, "rtp_port_max", int, source, prefix, _DEFAULT.rtp_port_max),
        source,
        prefix + "rtp_port_max",
    )
    if not 1024 <= low < high:
        raise ConfigError(
            source, prefix + "rtp_port_max", "expected 1024 <= rtp_port_min < rtp_port_max"
        )
    rate = _get(data, "sampling_rate", int, source, prefix, _DEFAULT.sampling_rate)
    if rate not in SAMPLING_RATES:
        rates = ", ".join(map(str, SAMPLING_RATES))
        raise ConfigError(source, prefix + "sampling_rate", f"expected one of {rates}")
    if janus is None:
        return JanusConfig(rtp_port_min=low, rtp_port_max=high, sampling_rate=rate)
    return JanusConfig(executable=janus, rtp_port_min=low, rtp_port_max=high, sampling_rate=rate)
