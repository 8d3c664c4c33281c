"""``[server]``: the embedded conference server's listener, tokens and spaces.

::

    [server]
    host = "127.0.0.1"
    port = 8080
    session_timeout_seconds = 30   # a client process's attendees leave this long after its last socket

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
    dial_in_id = "1000"         # the meeting ID callers key in the voice menu (digits)
    host_pin_file = "/etc/spaces/demo.pin"     # or host_pin_env = "VAR": a moderator's PIN (digits)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..conference.server.config import ServerConfig, SpaceConfig, TokenConfig
from ..conference.server.model import Settings
from ..conference.wire import GuestPolicy, Role
from .values import ConfigError
from .values import get as _get
from .values import host as _host
from .values import known as _known
from .values import port as _port
from .values import seconds as _seconds
from .values import secret as _secret

_NAME = re.compile(r"[A-Za-z0-9._~-]{1,64}")
"""Space ids and token names: URL path segments without escaping, short enough for logs."""

MIN_TOKEN_LENGTH = 16
"""Shorter bearer tokens are guessable; refuse them at start rather than in production."""

_DIGITS = re.compile(r"[0-9]{1,16}")
"""Dial-in IDs: what a phone's keypad can send, and no longer than the menu collects."""
_PIN = re.compile(r"[0-9]{4,16}")
"""Host PINs: keyed digits; fewer than four are guessed within the menu's bounds."""

MAX_CAPACITY = 1_000_000
"""``meeting_capacity`` bound: far beyond any meeting, small enough to catch a typo."""

MAX_SESSION_TIMEOUT = 86400.0
"""``session_timeout_seconds`` bound: a day, far beyond any client's reconnection."""

_DEFAULT = ServerConfig()
_SPACE = Settings()


def read_server(data: Mapping[str, Any], source: str) -> ServerConfig:
    """Validate the contents of a ``[server]`` table; errors name ``source`` and the key."""
    _known(
        data,
        ("host", "port", "tokens", "spaces", "meeting_capacity", "session_timeout_seconds"),
        source,
        "server.",
    )
    host = _host(_get(data, "host", str, source, "server.", _DEFAULT.host), source, "server.host")
    port = _port(_get(data, "port", int, source, "server.", _DEFAULT.port), source, "server.port")
    tokens = tuple(
        _token(item, source, f"server.tokens[{i}]")
        for i, item in enumerate(_get(data, "tokens", list, source, "server.", []))
    )
    names = [t.name for t in tokens]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(source, "server.tokens", f"token name {name!r} is used twice")
    spaces = tuple(
        _space(item, source, f"server.spaces[{i}]")
        for i, item in enumerate(_get(data, "spaces", list, source, "server.", []))
    )
    ids = [s.id for s in spaces]
    for space_id in ids:
        if ids.count(space_id) > 1:
            raise ConfigError(source, "server.spaces", f"space id {space_id!r} is used twice")
    seen: set[str] = set()
    for i, space in enumerate(spaces):
        if space.dial_in_id is None:
            continue
        if space.dial_in_id in seen:  # the second use is the mistake: name its key
            raise ConfigError(
                source,
                f"server.spaces[{i}].dial_in_id",
                f"dial-in ID {space.dial_in_id} is used twice",
            )
        seen.add(space.dial_in_id)
    capacity = _get(data, "meeting_capacity", int, source, "server.", _DEFAULT.meeting_capacity)
    if not 1 <= capacity <= MAX_CAPACITY:
        raise ConfigError(
            source,
            "server.meeting_capacity",
            f"expected 1-{MAX_CAPACITY} attendees, got {capacity}",
        )
    return ServerConfig(
        host=host,
        port=port,
        tokens=tokens,
        spaces=spaces,
        meeting_capacity=capacity,
        session_timeout_seconds=_session_timeout(data, source),
        source=source,
    )


def _session_timeout(data: Mapping[str, Any], source: str) -> float:
    key = "session_timeout_seconds"
    value = _seconds(data, key, source, _DEFAULT.session_timeout_seconds, "server.")
    # Zero would drop a node's calls on any blip; a day is far beyond any reconnection.
    if not 0 < value <= MAX_SESSION_TIMEOUT:
        raise ConfigError(
            source,
            f"server.{key}",
            f"expected more than 0 and at most {MAX_SESSION_TIMEOUT:g} seconds, got {value:g}",
        )
    return value


def _token(item: object, source: str, key: str) -> TokenConfig:
    if not isinstance(item, dict):
        raise ConfigError(source, key, "expected a table with name, role and a token")
    _known(item, ("name", "role", "token", "token_file", "token_env"), source, key + ".")
    name = _get(item, "name", str, source, key + ".", None)
    if name is None or not _NAME.fullmatch(name):
        raise ConfigError(
            source, key + ".name", "expected 1-64 letters, digits, '.', '_', '~', '-'"
        )
    role_text = _get(item, "role", str, source, key + ".", None)
    try:
        role = Role(role_text)
    except ValueError as exc:
        raise ConfigError(
            source, key + ".role", "expected moderator, member, guest or bridge"
        ) from exc
    given = [kind for kind in ("token", "token_file", "token_env") if kind in item]
    if len(given) != 1:
        raise ConfigError(source, key, "expected exactly one of token, token_file, token_env")
    secret = _secret(item, "token", source, key + ".", inline=True) or ""
    if len(secret) < MIN_TOKEN_LENGTH:
        # The message never repeats the secret: configuration errors end up in logs.
        raise ConfigError(
            source, f"{key}.{given[0]}", f"a token needs {MIN_TOKEN_LENGTH}+ characters"
        )
    return TokenConfig(secret, role, name)


def _space(item: object, source: str, key: str) -> SpaceConfig:
    if not isinstance(item, dict):
        raise ConfigError(source, key, "expected a table with at least an id")
    _known(
        item,
        (
            "id",
            "name",
            "auto_start",
            "guest_policy",
            "prevent_unmuting",
            "mute_on_entry",
            "dial_in_id",
            "host_pin_file",
            "host_pin_env",
        ),
        source,
        key + ".",
    )
    prefix = key + "."
    space_id = _get(item, "id", str, source, prefix, None)
    if space_id is None or not _NAME.fullmatch(space_id):
        raise ConfigError(source, key + ".id", "expected 1-64 letters, digits, '.', '_', '~', '-'")
    policy_text = _get(item, "guest_policy", str, source, prefix, str(_SPACE.guest_policy))
    try:
        policy = GuestPolicy(policy_text)
    except ValueError as exc:
        raise ConfigError(
            source, key + ".guest_policy", "expected ALWAYS_ACCEPT, ALWAYS_DENY or ASK_MODERATOR"
        ) from exc
    settings = Settings(
        prevent_unmuting=_get(
            item, "prevent_unmuting", bool, source, prefix, _SPACE.prevent_unmuting
        ),
        mute_on_entry=_get(item, "mute_on_entry", bool, source, prefix, _SPACE.mute_on_entry),
        guest_policy=policy,
        auto_start=_get(item, "auto_start", bool, source, prefix, _SPACE.auto_start),
    )
    name = _get(item, "name", str, source, prefix, space_id)
    dial_in = item.get("dial_in_id")
    if isinstance(dial_in, int) and not isinstance(dial_in, bool) and dial_in >= 0:
        dial_in = str(dial_in)  # TOML's 1000 and "1000" are the same ID to a caller
    if dial_in is not None and (not isinstance(dial_in, str) or not _DIGITS.fullmatch(dial_in)):
        raise ConfigError(source, prefix + "dial_in_id", "expected 1-16 digits")
    # A PIN is a secret: from a file or the environment only, so that the TOML can be shared.
    pin = _secret(item, "host_pin", source, prefix)
    if pin is not None and not _PIN.fullmatch(pin):
        kind = "host_pin_file" if "host_pin_file" in item else "host_pin_env"
        # The message never repeats the secret: configuration errors end up in logs.
        raise ConfigError(source, prefix + kind, "expected a PIN of 4-16 digits")
    if pin is not None and dial_in is None:
        raise ConfigError(source, prefix + "dial_in_id", "a host PIN needs a dial-in ID")
    return SpaceConfig(space_id, name, settings, dial_in_id=dial_in, host_pin=pin)
