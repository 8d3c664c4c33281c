"""The events of a conference server in this process (the embedded one), without Socket.IO.

Each event is encoded as JSON when the server publishes it, as Socket.IO would, and handed to
``on_event`` on a later turn of the event loop, as a socket would deliver it: after the API call
that caused it has returned to its caller. The same parser reads it, so the bridge sees exactly the
events, in the order, that it would read from the socket; what is saved is framing, a loopback
connection and Socket.IO's encoding and dispatch, on both sides, for every event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Protocol

import structlog

from .errors import NotFound
from .events import Connected, SpacesEvent, parse_event

log = structlog.get_logger("bridge.conference.client")

Payload = Mapping[str, object]


class EventSource(Protocol):
    """The server side: who hosts which space, and a hook on every published event."""

    def has_space(self, space_id: str) -> bool: ...

    def listen(self, deliver: Callable[[Payload], None]) -> Callable[[], None]:
        """Call ``deliver`` with each event's wire payload, in order; returns the way to stop."""
        ...


class LocalSubscription:
    """:class:`~bridge.conference.client.realtime.SpacesSubscription`'s interface over an
    in-process server."""

    def __init__(self, source: EventSource, *, on_event: Callable[[SpacesEvent], None]) -> None:
        self._source = source
        self._on_event = on_event
        self._spaces: dict[str, None] = {}  # ordered, like the socket's
        self._stop: Callable[[], None] | None = None
        self.malformed_events = 0

    @property
    def connected(self) -> bool:
        return self._stop is not None

    @property
    def spaces(self) -> tuple[str, ...]:
        return tuple(self._spaces)

    async def start(self) -> None:
        self._stop = self._source.listen(self._deliver)
        self._emit(Connected())

    async def close(self) -> None:
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()

    async def subscribe(self, space_id: str) -> None:
        """Receive the space's events from now on; ``NotFound`` for a space the server lacks."""
        if not self._source.has_space(space_id):
            raise NotFound(404, "not_found", f"space {space_id} not found")
        self._spaces[space_id] = None

    def _deliver(self, payload: Payload) -> None:
        if payload.get("topicId") in self._spaces:
            # Encoded now (the state as published), parsed on a later turn (as a socket would).
            text = json.dumps(payload)
            asyncio.get_running_loop().call_soon(self._dispatch, text)

    def _dispatch(self, text: str) -> None:
        event = parse_event(json.loads(text), on_malformed=self._on_malformed)
        if event is not None:
            self._emit(event)

    def _on_malformed(self, why: str) -> None:
        self.malformed_events += 1
        log.warning("malformed spaces event dropped", reason=why)

    def _emit(self, event: SpacesEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            # As on the socket: a consumer's bug must not stop the events that follow.
            log.exception("spaces event handler failed", kind=type(event).__name__)
