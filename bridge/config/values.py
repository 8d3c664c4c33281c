"""Reading typed values out of TOML tables, with errors that name the file and the key."""

from __future__ import annotations

import ipaddress
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
