"""``[conference]``: where the conference server is (embedded, or remote with the bridge's token)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .values import ConfigError
from .values import get as _get
from .values import known as _known
from .values import seconds as _seconds
from .values import secret as _secret


@dataclass(frozen=True, slots=True)
class ConferenceConfig:
    """Where the conference server is: embedded (no ``url``) or remote."""

    url: str | None = None
    """Base URL of a remote server (``http://host:port``); absent = run the embedded server."""
    token: str | None = field(default=None, repr=False)
    """The bridge's bearer token for a remote server (from ``token_file`` or ``token_env``)."""
    request_timeout_seconds: float = 5.0
    """Per-request timeout of REST calls."""


_DEFAULT = ConferenceConfig()


def read_conference(data: Mapping[str, Any], source: str) -> ConferenceConfig:
    _known(
        data, ("url", "token_file", "token_env", "request_timeout_seconds"), source, "conference."
    )
    url = _get(data, "url", str, source, "conference.", None)
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(
            source, "conference.url", f"expected an http:// or https:// URL, got {url!r}"
        )
    token = _secret(data, "token", source, "conference.")
    if url is not None and token is None:
        raise ConfigError(
            source,
            "conference.token_file",
            "a remote server needs the bridge's token (token_file or token_env)",
        )
    if url is None and token is not None:
        raise ConfigError(source, "conference.url", "a token is only used with a remote server url")
    timeout = _seconds(
        data, "request_timeout_seconds", source, _DEFAULT.request_timeout_seconds, "conference."
    )
    if timeout <= 0:
        raise ConfigError(source, "conference.request_timeout_seconds", "expected seconds > 0")
    return ConferenceConfig(
        url=url.rstrip("/") if url else None, token=token, request_timeout_seconds=timeout
    )
