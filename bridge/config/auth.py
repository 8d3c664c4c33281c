"""``[auth]``: digest users mapped to roles, and source networks (docs/behaviour.md, SIP
surface)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ..calls.access import AuthConfig, AuthUser
from ..sip.uri import is_token
from .values import ConfigError, secret
from .values import get as _get
from .values import known as _known
from .values import seconds as _seconds

_DEFAULT = AuthConfig()


def read_auth(data: Mapping[str, Any], source: str) -> AuthConfig:
    _known(
        data,
        ("realm", "nonce_lifetime_seconds", "algorithms", "users", "allow", "deny"),
        source,
        "auth.",
    )
    algorithms = _get(data, "algorithms", list, source, "auth.", list(_DEFAULT.algorithms))
    if not algorithms or not all(a in ("SHA-256", "MD5") for a in algorithms):
        raise ConfigError(source, "auth.algorithms", 'expected a list of "SHA-256" and "MD5"')
    realm = _get(data, "realm", str, source, "auth.", _DEFAULT.realm)
    if not realm or '"' in realm or "\\" in realm:
        raise ConfigError(source, "auth.realm", "expected a realm without quotes or backslashes")
    users: list[AuthUser] = []
    for i, item in enumerate(_get(data, "users", list, source, "auth.", [])):
        key = f"auth.users[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(source, key, "expected a table with user, role and a password")
        _known(item, ("user", "role", "password_file", "password_env"), source, key + ".")
        user = _get(item, "user", str, source, key + ".", None)
        if not user or not is_token(user):
            raise ConfigError(source, key + ".user", "expected a SIP user name (a token)")
        role = _get(item, "role", str, source, key + ".", "member")
        if role not in ("moderator", "member", "guest"):
            raise ConfigError(source, key + ".role", "expected moderator, member or guest")
        password = _password(item, source, key)
        users.append(AuthUser(user, password, role))
    names = [u.user for u in users]
    if len(set(names)) != len(names):
        raise ConfigError(source, "auth.users", "a user is listed twice")
    networks: dict[str, tuple[str, ...]] = {}
    for name in ("allow", "deny"):
        items = _get(data, name, list, source, "auth.", [])
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except (TypeError, ValueError) as exc:
                raise ConfigError(source, f"auth.{name}", f"not a network: {item!r}") from exc
        networks[name] = tuple(items)
    lifetime = _seconds(
        data, "nonce_lifetime_seconds", source, _DEFAULT.nonce_lifetime_seconds, "auth."
    )
    return AuthConfig(
        realm, lifetime, tuple(algorithms), tuple(users), networks["allow"], networks["deny"]
    )


def _password(item: Mapping[str, Any], source: str, key: str) -> str:
    password = secret(item, "password", source, key + ".")
    if password is None:
        raise ConfigError(source, key, "expected password_file or password_env (never inline)")
    return password
