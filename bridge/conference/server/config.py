"""The conference server's configuration values (read from the ``[server]`` table by
``bridge/config/server.py``), and the embedded default."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from ..wire import GuestPolicy, Role
from .mixer.config import JanusConfig
from .model import DEFAULT_CAPACITY, Caller, Settings


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """One bearer token the server accepts."""

    token: str = field(repr=False)
    """The secret itself (kept out of ``repr`` so that it is never logged by accident)."""
    role: Role
    """What the token may do."""
    name: str
    """Who holds it; attendees created with the token are owned by this name (unique)."""


@dataclass(frozen=True, slots=True)
class SpaceConfig:
    """One space the server hosts."""

    id: str
    """The space id used in URLs and dialled by phones (``sip:<id>@bridge``)."""
    name: str
    """A human name for consoles."""
    settings: Settings = field(default_factory=Settings)
    """Initial settings; moderators may change all but ``auto_start`` at run time."""
    dial_in_id: str | None = None
    """The numeric meeting ID callers key in a dial-in number's voice menu (docs/calls.md);
    None: the space is reached only by its SIP URI."""
    host_pin: str | None = field(default=None, repr=False)
    """Digits that make a menu caller a moderator (a secret: kept out of ``repr``, compared in
    constant time by :mod:`bridge.conference.server.dialin`); None: no PIN is asked."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the conference server needs; built once, passed down, never global."""

    host: str = "127.0.0.1"
    """Address to listen on (loopback unless the operator opens it)."""
    port: int = 8080
    """TCP port for HTTP and Socket.IO; 0 picks a free one (tests, embedded mode)."""
    tokens: tuple[TokenConfig, ...] = ()
    """Accepted bearer tokens."""
    spaces: tuple[SpaceConfig, ...] = ()
    """Hosted spaces."""
    mixer: JanusConfig | None = None
    """The media platform the server starts (a Janus AudioBridge); None: no meeting audio."""
    meeting_capacity: int = DEFAULT_CAPACITY
    """Attendees (in the meeting and its lobby) one meeting may hold; more joins get 409."""
    session_timeout_seconds: float = 30.0
    """How long a client session may have no socket connected before the attendees it joined
    leave (``sessions``): a dead bridge node's phones leave the roster after this. Longer than a
    client's reconnection after a server restart or a network blip (its backoff tops out at 15 s),
    short enough that a dead node's phones do not linger."""
    show_tokens: bool = False
    """Log moderator tokens at start: only for the development default, where nobody else knows them."""
    source: str = "<defaults>"
    """Where this configuration came from (for messages)."""

    def caller(self, token: str | None) -> Caller | None:
        """The caller a bearer token stands for, or ``None`` for no or an unknown token."""
        if not token:
            return None
        found: Caller | None = None
        for entry in self.tokens:
            # compare_digest over every entry: the time taken does not tell how close a guess was.
            if hmac.compare_digest(entry.token.encode(), token.encode()):
                found = Caller(entry.name, entry.role)
        return found


DEMO_DIAL_IN = "1000"
"""The demo space's meeting ID in the development default, printed at start."""


def embedded_default(token: str, bridge_token: str | None = None) -> ServerConfig:
    """The no-settings server: space ``demo`` (auto-start, guests always accepted), a moderator token
    ``token`` for the development console, and a bridge token (random unless given)."""
    return ServerConfig(
        port=8080,
        tokens=(
            TokenConfig(token, Role.MODERATOR, "console"),
            TokenConfig(bridge_token or secrets.token_urlsafe(24), Role.BRIDGE, "bridge"),
        ),
        spaces=(
            SpaceConfig(
                "demo",
                "Demo space",
                Settings(auto_start=True, guest_policy=GuestPolicy.ALWAYS_ACCEPT),
                dial_in_id=DEMO_DIAL_IN,
            ),
        ),
        show_tokens=True,
        source="<embedded default>",
    )


def token_for(config: ServerConfig, role: Role) -> str | None:
    """The first configured token of ``role`` (how the embedded bridge finds its own token)."""
    return next((t.token for t in config.tokens if t.role is role), None)
