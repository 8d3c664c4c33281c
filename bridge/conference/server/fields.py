"""Validation of request bodies: each reader returns a typed value or raises ``BadRequest`` naming the
field and what was expected. Unknown fields are ignored so that clients may send newer ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from ..wire import CODECS, MediaOffer, Permission
from .errors import BadRequest

MAX_TEXT = 256
"""Longest display name or id accepted: roster answers and events repeat them for every client."""

MAX_TYPE = 32
"""``attendeeType`` is a short token (``phone``, ``web``)."""

MAX_DIGITS = 16
"""Dial-in IDs and host PINs: keyed digits, as many as a voice menu collects."""

MAX_LIST = 500
"""Longest id list (exclusion lists): the most attendees a meeting holds."""

E = TypeVar("E", bound=StrEnum)

Body = Mapping[str, object]


def body_object(value: object) -> Body:
    """The decoded JSON body, which must be an object."""
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object", "bad_json")
    return value


def opt_bool(body: Body, key: str) -> bool | None:
    """An optional boolean field (``null`` counts as absent)."""
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false", "bad_field")
    return value


def opt_str(body: Body, key: str, limit: int = MAX_TEXT) -> str | None:
    """An optional non-empty string field of at most ``limit`` characters."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadRequest(f"{key} must be a string of 1-{limit} characters", "bad_field")
    return value


def req_str(body: Body, key: str, limit: int = MAX_TEXT) -> str:
    """A required non-empty string field."""
    value = opt_str(body, key, limit)
    if value is None:
        raise BadRequest(f"{key} is required", "missing_field")
    return value


def opt_enum(body: Body, key: str, kind: type[E]) -> E | None:
    """An optional field holding one of an enumeration's values."""
    value = body.get(key)
    if value is None:
        return None
    allowed = [str(member) for member in kind]
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(f"{key} must be one of {', '.join(allowed)}", "bad_field")
    return kind(value)


def str_list(body: Body, key: str, *, required: bool = False) -> list[str]:
    """A list of short strings (ids, permission names); absent is empty unless ``required``."""
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{key} is required", "missing_field")
        return []
    if (
        not isinstance(value, list)
        or len(value) > MAX_LIST
        or not all(isinstance(item, str) and 0 < len(item) <= MAX_TEXT for item in value)
    ):
        raise BadRequest(f"{key} must be a list of at most {MAX_LIST} strings", "bad_field")
    return list(value)


def opt_media_offer(body: Body, key: str) -> MediaOffer | None:
    """A join's ``media``: ``{"rtp": {"ip", "port"}, "codecs": [...]}`` (docs/conference-api.md)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("rtp"), dict):
        raise BadRequest(f'{key} must be {{"rtp": {{"ip", "port"}}, "codecs"}}', "bad_field")
    rtp = value["rtp"]
    host, port = rtp.get("ip"), rtp.get("port")
    try:
        ipaddress.ip_address(host if isinstance(host, str) else "")
    except ValueError as exc:
        raise BadRequest(f"{key}.rtp.ip must be an IP address", "bad_field") from exc
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise BadRequest(f"{key}.rtp.port must be a port 1-65535", "bad_field")
    codecs = str_list(value, "codecs", required=True)
    if not codecs or not set(codecs) <= set(CODECS):
        raise BadRequest(f"{key}.codecs must list some of {', '.join(CODECS)}", "bad_field")
    assert isinstance(host, str)
    return MediaOffer(host, port, tuple(codecs))


def permissions(body: Body, key: str) -> None:
    """``requestedPermissions`` and friends: only ``PERMISSION_UNMUTE`` exists (absent means it)."""
    for item in str_list(body, key):
        if item != Permission.UNMUTE:
            raise BadRequest(f"{key}: unknown permission {item!r}", "bad_field")
