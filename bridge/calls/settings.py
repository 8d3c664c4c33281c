"""What the call layer needs from the configuration, as one frozen value."""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..sip import Request
from .menu import MenuRules
from .policy import KeyMap
from .version import Generation

#: Mute signalling methods (docs/behaviour.md, Server to phone).
METHODS = frozenset({"sdp", "info", "conference"})

MENU = "@menu"
"""The ``[dialplan]`` value that sends a Request-URI user to the voice menu instead of a space
(``@`` is no character of a space id, so no space can be shadowed by it)."""

DEFAULT_DIALPLAN: Mapping[str, str] = MappingProxyType({"join": MENU})
"""Without a ``[dialplan]`` table, ``sip:join@bridge`` reaches the menu."""


@dataclass(frozen=True, slots=True)
class GuessBounds:
    """Wrong menu entries allowed a minute across calls (docs/security.md, "Dial-in")."""

    ids_per_source: int = 10
    """Unknown meeting IDs from one source address."""
    pins_per_source: int = 3
    """Wrong host PINs from one source address."""
    pins_per_space: int = 10
    """Wrong host PINs for one space, from anywhere: what a guesser with many addresses gets."""


@dataclass(frozen=True, slots=True)
class CallSettings:
    media_host: str = "127.0.0.1"
    version_header: str = "spacesVersion"
    dialplan: Mapping[str, str] = field(default_factory=lambda: DEFAULT_DIALPLAN)
    """Request-URI user → space id, or :data:`MENU`; a user that is not listed names the space
    itself."""
    lobby_timeout: float = 300.0
    ringing_interval: float = 60.0
    lobby_answer: bool = False
    """Answer lobby callers at once with inactive media instead of ringing (docs/behaviour.md,
    Lobby)."""
    max_joining: int = 100
    """Calls waiting for the conference server's answer; more INVITEs get 503 at once."""
    lobby_limit: int = 100
    """Callers waiting in one space's lobby; more are refused 480 ``Lobby Full``."""
    keys: KeyMap = field(default_factory=KeyMap)
    legacy_methods: frozenset[str] = frozenset({"sdp", "conference"})
    modern_methods: frozenset[str] = frozenset({"sdp", "info", "conference"})

    menu: MenuRules = field(default_factory=MenuRules)
    """The voice menu's timings and per-call bounds."""
    guesses: GuessBounds = field(default_factory=GuessBounds)
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    """Trusted SIP proxies in front (``[limits] trusted_proxies``): behind one, a caller's
    address is the one the proxy received its request from (see :meth:`origin`)."""

    def origin(self, request: Request, source: str) -> str:
        """The caller's address for per-source bounds (the menu's guesses): ``source``, or when
        that is a trusted proxy, the address the proxy says it received the request from: the
        Via below its own (its ``received`` parameter, RFC 3261 §18.2.1, else its host). A proxy
        that is not trusted could write anything there, so only a listed one is believed."""
        if not self.proxies:
            return source
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return source
        vias = request.vias
        if len(vias) < 2 or not any(address in network for network in self.proxies):
            return source
        below = vias[1]
        return (below.received or below.host).strip("[]")

    def route(self, user: str | None) -> str | None:
        """The space a Request-URI user part names, or None (404; the menu's numbers too)."""
        if not user:
            return None
        space = self.dialplan.get(user, user)
        return None if space == MENU else space

    def is_menu(self, user: str | None) -> bool:
        """Whether a Request-URI user part is a number of the voice menu."""
        return bool(user) and self.dialplan.get(user or "") == MENU

    def menu_numbers(self) -> list[str]:
        return [user for user, space in self.dialplan.items() if space == MENU]

    user_agents: tuple[tuple[str, frozenset[str]], ...] = ()
    """``(glob, methods)``: the first pattern matching an endpoint's User-Agent (case-insensitive)
    chooses its signalling methods instead of the generation's default."""

    def methods(self, generation: Generation, user_agent: str | None = None) -> frozenset[str]:
        if user_agent:
            agent = user_agent.lower()
            for pattern, methods in self.user_agents:
                if fnmatch.fnmatchcase(agent, pattern.lower()):
                    return methods
        return self.modern_methods if generation is Generation.MODERN else self.legacy_methods
