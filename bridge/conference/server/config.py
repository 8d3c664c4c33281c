"""The conference server's configuration: the ``[server]`` TOML table, or the embedded default.

::

    [server]
    host = "127.0.0.1"
    port = 8080

    [[server.tokens]]
    name = "console"
    role = "moderator"          # moderator | member | guest | bridge
    token_file = "/etc/spaces/console.token"   # or token_env = "VAR", or token = "..."

    [[server.spaces]]
    id = "demo"
    name = "Demo space"
    auto_start = true
    guest_policy = "ASK_MODERATOR"  # ALWAYS_ACCEPT | ALWAYS_DENY | ASK_MODERATOR
    prevent_unmuting = false
    mute_on_entry = false
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import pathlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...config import ConfigError
from .model import Caller, GuestPolicy, Role, Settings

_NAME = re.compile(r"[A-Za-z0-9._~-]{1,64}")
"""Space ids and token names: URL path segments without escaping, short enough for logs."""

MIN_TOKEN_LENGTH = 16
"""Shorter bearer tokens are guessable; refuse them at start rather than in production."""


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
    meeting_capacity: int = 500
    """Attendees (in the meeting and its lobby) one meeting may hold; more joins get 409."""
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

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> ServerConfig:
        """Validate the contents of a ``[server]`` table; errors name ``source`` and the key."""
        _known(data, ("host", "port", "tokens", "spaces", "meeting_capacity"), source, "server.")
        host = _get(data, "host", str, source, "server.host", "127.0.0.1")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError as exc:
            raise ConfigError(
                source, "server.host", f"expected an IP address, got {host!r}"
            ) from exc
        port = _get(data, "port", int, source, "server.port", 8080)
        if not 0 <= port <= 65535:
            raise ConfigError(source, "server.port", f"expected a port 0-65535, got {port}")
        tokens = tuple(
            _token(item, source, f"server.tokens[{i}]")
            for i, item in enumerate(_get(data, "tokens", list, source, "server.tokens", []))
        )
        names = [t.name for t in tokens]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(source, "server.tokens", f"token name {name!r} is used twice")
        spaces = tuple(
            _space(item, source, f"server.spaces[{i}]")
            for i, item in enumerate(_get(data, "spaces", list, source, "server.spaces", []))
        )
        ids = [s.id for s in spaces]
        for space_id in ids:
            if ids.count(space_id) > 1:
                raise ConfigError(source, "server.spaces", f"space id {space_id!r} is used twice")
        capacity = _get(data, "meeting_capacity", int, source, "server.meeting_capacity", 500)
        if not 1 <= capacity <= 1_000_000:
            raise ConfigError(
                source, "server.meeting_capacity", f"expected 1-1000000 attendees, got {capacity}"
            )
        return cls(
            host=host.strip("[]"),
            port=port,
            tokens=tokens,
            spaces=spaces,
            meeting_capacity=capacity,
            source=source,
        )


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
            ),
        ),
        show_tokens=True,
        source="<embedded default>",
    )


def token_for(config: ServerConfig, role: Role) -> str | None:
    """The first configured token of ``role`` (how the embedded bridge finds its own token)."""
    return next((t.token for t in config.tokens if t.role is role), None)


def _token(item: object, source: str, key: str) -> TokenConfig:
    if not isinstance(item, dict):
        raise ConfigError(source, key, "expected a table with name, role and a token")
    _known(item, ("name", "role", "token", "token_file", "token_env"), source, key + ".")
    name = _get(item, "name", str, source, key + ".name", None)
    if name is None or not _NAME.fullmatch(name):
        raise ConfigError(
            source, key + ".name", "expected 1-64 letters, digits, '.', '_', '~', '-'"
        )
    role_text = _get(item, "role", str, source, key + ".role", None)
    try:
        role = Role(role_text)
    except ValueError as exc:
        raise ConfigError(
            source, key + ".role", "expected moderator, member, guest or bridge"
        ) from exc
    given = [k for k in ("token", "token_file", "token_env") if k in item]
    if len(given) != 1:
        raise ConfigError(source, key, "expected exactly one of token, token_file, token_env")
    kind = given[0]
    value = _get(item, kind, str, source, f"{key}.{kind}", "")
    if kind == "token_file":
        try:
            secret = pathlib.Path(value).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(source, key + ".token_file", f"cannot read: {exc.strerror}") from exc
    elif kind == "token_env":
        secret = os.environ.get(value, "").strip()
        if not secret:
            raise ConfigError(source, key + ".token_env", f"environment variable {value} is empty")
    else:
        secret = value
    if len(secret) < MIN_TOKEN_LENGTH:
        # The message never repeats the secret: configuration errors end up in logs.
        raise ConfigError(source, f"{key}.{kind}", f"a token needs {MIN_TOKEN_LENGTH}+ characters")
    return TokenConfig(secret, role, name)


def _space(item: object, source: str, key: str) -> SpaceConfig:
    if not isinstance(item, dict):
        raise ConfigError(source, key, "expected a table with at least an id")
    _known(
        item,
        ("id", "name", "auto_start", "guest_policy", "prevent_unmuting", "mute_on_entry"),
        source,
        key + ".",
    )
    space_id = _get(item, "id", str, source, key + ".id", None)
    if space_id is None or not _NAME.fullmatch(space_id):
        raise ConfigError(source, key + ".id", "expected 1-64 letters, digits, '.', '_', '~', '-'")
    policy_text = _get(item, "guest_policy", str, source, key + ".guest_policy", "ALWAYS_ACCEPT")
    try:
        policy = GuestPolicy(policy_text)
    except ValueError as exc:
        raise ConfigError(
            source, key + ".guest_policy", "expected ALWAYS_ACCEPT, ALWAYS_DENY or ASK_MODERATOR"
        ) from exc
    settings = Settings(
        prevent_unmuting=_get(
            item, "prevent_unmuting", bool, source, key + ".prevent_unmuting", False
        ),
        mute_on_entry=_get(item, "mute_on_entry", bool, source, key + ".mute_on_entry", False),
        guest_policy=policy,
        auto_start=_get(item, "auto_start", bool, source, key + ".auto_start", True),
    )
    name = _get(item, "name", str, source, key + ".name", space_id)
    return SpaceConfig(space_id, name, settings)


def _known(data: Mapping[str, Any], keys: tuple[str, ...], source: str, prefix: str) -> None:
    for key in data:
        if key not in keys:
            raise ConfigError(
                source, prefix + key, f"unknown key (expected one of: {', '.join(keys)})"
            )


def _get(  # noqa: PLR0917  (a private helper called in one uniform shape)
    data: Mapping[str, Any], name: str, kind: type, source: str, key: str, default: Any
) -> Any:
    value = data.get(name, default)
    # bool is an int in Python; "port = true" must not pass as port 1.
    if value is not None and (
        not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    ):
        raise ConfigError(source, key, f"expected {kind.__name__}, got {type(value).__name__}")
    return value
