"""Reading typed values out of TOML tables, with errors that name the file and the key."""

from __future__ import annotations

import ipaddress
import os
import pathlib
from collections.abc import Mapping
from typing import Any


class ConfigError(Exception):
    """A configuration problem, phrased for the operator: file, key, expectation."""

    def __init__(self, source: str, key: str, message: str) -> None:
        super().__init__(f"{source}: {key}: {message}")
        self.source = source
        self.key = key


def known(data: Mapping[str, Any], keys: tuple[str, ...], source: str, prefix: str) -> None:
    for key in data:
        if key not in keys:
            raise ConfigError(
                source, prefix + key, f"unknown key (expected one of: {', '.join(keys)})"
            )


def table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(source, key, "expected a table")
    return value


def get(  # noqa: PLR0917  (called in one uniform shape)
    data: Mapping[str, Any], key: str, kind: type, source: str, prefix: str, default: Any
) -> Any:
    value = data.get(key, default)
    if value is not None and (
        not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    ):
        raise ConfigError(
            source, prefix + key, f"expected {kind.__name__}, got {type(value).__name__}"
        )
    return value


def path(data: Mapping[str, Any], key: str, source: str, prefix: str) -> pathlib.Path | None:
    value = get(data, key, str, source, prefix, None)
    if not value:
        return None
    path = pathlib.Path(value)
    if not path.is_file():
        raise ConfigError(source, prefix + key, f"no such file: {value}")
    return path


def host(value: str, source: str, key: str) -> str:
    host = value.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise ConfigError(source, key, f"expected an IP address, got {value!r}") from exc
    return host


def port(value: int, source: str, key: str) -> int:
    if not 0 <= value <= 65535:
        raise ConfigError(source, key, f"expected a port 0-65535, got {value}")
    return value


def seconds(
    data: Mapping[str, Any], key: str, source: str, default: float, prefix: str = "drain."
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(source, prefix + key, "expected a number of seconds >= 0")
    return float(value)


def secret(
    data: Mapping[str, Any], name: str, source: str, prefix: str, *, inline: bool = False
) -> str | None:
    """A secret named ``name`` read from ``<name>_file`` or ``<name>_env`` (and ``<name>`` itself
    when ``inline`` is allowed); None when none is given. Exactly one source may be given, and an
    empty secret is an error: a blank file or variable is a deployment mistake, not "no password".
    Messages never repeat the secret, since configuration errors end up in logs."""
    kinds = (name, f"{name}_file", f"{name}_env") if inline else (f"{name}_file", f"{name}_env")
    given = [kind for kind in kinds if kind in data]
    if not given:
        return None
    if len(given) > 1:
        raise ConfigError(source, prefix + given[1], f"give one of {', '.join(kinds)}, not both")
    kind = given[0]
    where = get(data, kind, str, source, prefix, "")
    if kind.endswith("_file"):
        try:
            value = pathlib.Path(where).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                source, prefix + kind, f"cannot read {where}: {exc.strerror}"
            ) from exc
        if not value:
            raise ConfigError(source, prefix + kind, f"{where} is empty")
    elif kind.endswith("_env"):
        value = os.environ.get(where, "").strip()
        if not value:
            raise ConfigError(source, prefix + kind, f"environment variable {where} is not set")
    else:
        value = where
    return value
