"""Dial-in IDs and host PINs: how a voice menu's caller finds a space (docs/conference-api.md,
"Dial-in"). Pure, like the rules in ``state``: no I/O, no clock.

PINs are secrets: they are compared in constant time (``hmac.compare_digest``), never put in an
answer, an event or a log line; an answer says only whether the one given was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from ..wire import Role
from .config import SpaceConfig
from .errors import Forbidden, NotFound
from .model import JSON, Caller

#: Who may resolve IDs and check PINs: the bridge (for its menu callers) and moderators. Others
#: could use the route to guess PINs from outside the bridge's bounds on guessing.
RESOLVERS = frozenset({Role.BRIDGE, Role.MODERATOR})


class DialIn:
    """The hosted spaces by dial-in ID."""

    def __init__(self, spaces: Iterable[SpaceConfig]) -> None:
        self._by_id = {s.dial_in_id: s for s in spaces if s.dial_in_id is not None}

    def status(self, caller: Caller) -> JSON:
        """``GET /api/dialin``: whether any space has a dial-in ID (a bridge asks at start)."""
        _check(caller)
        return {"available": bool(self._by_id)}

    def resolve(self, caller: Caller, dial_in_id: str, pin: str | None) -> JSON:
        """``POST /api/dialin``: the space ``dial_in_id`` names, whether it has a host PIN, and
        whether ``pin`` (if given) is that PIN. 404 ``dialin_not_found`` for an unknown ID."""
        _check(caller)
        space = self._by_id.get(dial_in_id)
        if space is None:
            # The message does not repeat the digits: answers end up in logs.
            raise NotFound("no space has that dial-in ID", "dialin_not_found")
        host = False
        if pin is not None and space.host_pin is not None:
            host = hmac.compare_digest(space.host_pin.encode(), pin.encode())
        return {"spaceId": space.id, "hostPin": space.host_pin is not None, "host": host}


def _check(caller: Caller) -> None:
    if caller.role not in RESOLVERS:
        raise Forbidden("only bridge and moderator tokens resolve dial-in IDs")
