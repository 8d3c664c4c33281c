"""What the call layer needs from the configuration, as one frozen value."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

from .policy import KeyMap
from .version import Generation

#: Mute signalling methods (docs/behaviour.md, Server to phone).
METHODS = frozenset({"sdp", "info", "conference"})


@dataclass(frozen=True, slots=True)
class CallSettings:
    media_host: str = "127.0.0.1"
    version_header: str = "spacesVersion"
    dialplan: Mapping[str, str] = field(default_factory=dict)
    """Request-URI user → space id; a user that is not listed names the space itself."""
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

    def route(self, user: str | None) -> str | None:
        """The space a Request-URI user part names, or None (404)."""
        if not user:
            return None
        return self.dialplan.get(user, user)

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
