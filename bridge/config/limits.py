"""``[limits]``: per-source protection before the SIP stack, and the bounds on what calls hold."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..calls.settings import CallSettings
from ..sip import EndpointConfig
from .values import ConfigError
from .values import get as _get
from .values import known as _known

# The bounds the layers hold by default: this table only lets an operator change them.
_STACK = EndpointConfig()
_CALLS = CallSettings()


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Per-source protection before the SIP stack (docs/behaviour.md, Limits and bad input)."""

    rate_per_source: float = 1000.0
    """Messages per second one source address may send (0: no limit); beyond, they are dropped."""
    burst_per_source: float = 2000.0
    invites_per_source: float = 50.0
    """New INVITEs per second one source may send (0: no limit); beyond, they are dropped."""
    invite_burst_per_source: float = 100.0
    drop_scanners: bool = True
    """Drop requests whose User-Agent is a known SIP scanner, without an answer."""
    max_transactions: int = _STACK.max_transactions
    """Open server transactions before new requests get 503 with Retry-After."""
    max_dialogs: int = _STACK.max_dialogs
    """Established and early dialogs before new INVITEs get 503 with Retry-After."""
    lobby_per_space: int = _CALLS.lobby_limit
    """Callers waiting in one space's lobby before more get 480 ``Lobby Full``."""
    max_joining: int = _CALLS.max_joining
    """Calls waiting for the conference server's answer before more INVITEs get 503."""
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    """SIP proxies in front of the bridge (docs/scale-out.md): no per-source rate or connection
    limit applies to them, since each carries many phones. Addresses or CIDR networks."""


_DEFAULT = LimitsConfig()
_RATES = ("rate_per_source", "burst_per_source", "invites_per_source", "invite_burst_per_source")
_COUNTS = ("max_transactions", "max_dialogs", "lobby_per_space", "max_joining")


def read_limits(data: Mapping[str, Any], source: str) -> LimitsConfig:
    _known(data, (*_RATES, "drop_scanners", *_COUNTS, "trusted_proxies"), source, "limits.")
    numbers: dict[str, Any] = {}
    for key in _RATES:
        value = data.get(key, getattr(_DEFAULT, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(source, "limits." + key, "expected a number of messages >= 0")
        numbers[key] = float(value)
    for rate, burst in (
        ("rate_per_source", "burst_per_source"),
        ("invites_per_source", "invite_burst_per_source"),
    ):
        if numbers[rate] and numbers[burst] < 1:
            raise ConfigError(source, "limits." + burst, "expected at least 1 message")
    scanners = _get(data, "drop_scanners", bool, source, "limits.", _DEFAULT.drop_scanners)
    for key in _COUNTS:
        value = _get(data, key, int, source, "limits.", getattr(_DEFAULT, key))
        if value < 1:
            raise ConfigError(source, "limits." + key, "expected a count >= 1")
        numbers[key] = value
    proxies = _networks(data.get("trusted_proxies", []), source, "limits.trusted_proxies")
    return LimitsConfig(drop_scanners=scanners, trusted_proxies=proxies, **numbers)


def _networks(
    value: object, source: str, key: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(source, key, 'expected a list of addresses or networks ("10.0.0.5")')
    networks = []
    for item in value:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(source, key, f"{item!r} is not an IP address or network") from None
    return tuple(networks)
