"""What Janus tells the media plane (:mod:`.plane`) unasked: who talks in a room, and the news of
a browser's PeerConnection (up, media, ICE candidates, hung up). Janus names rooms and handles by
its own numbers; this module keeps the two indexes that lead from them back to the plane's rooms
and participants, and hands each piece of news to the server's callbacks in a task of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from .rooms import BrowserCandidate, BrowserLost, Member, Room, Talking

log = structlog.get_logger("bridge.conference.server.mixer")


class Listeners(Protocol):
    """The server's callbacks, as the plane holds them (set after it is made)."""

    on_talking: Talking | None
    on_browser_lost: BrowserLost | None
    on_browser_candidate: BrowserCandidate | None


class JanusEvents:
    """Routes Janus's events to the plane's rooms and participants; one per plane."""

    def __init__(
        self, listeners: Listeners, *, detach: Callable[[Member], Awaitable[None]]
    ) -> None:
        """``detach(browser)`` lets go of a hung-up browser's handle."""
        self._listeners = listeners
        self._detach = detach
        self.handles: dict[int, tuple[Room, Member]] = {}  # a browser's handle -> it
        self.rooms: dict[int, Room] = {}  # Janus's room number -> the room
        self._tasks: set[asyncio.Task[None]] = set()  # callbacks of Janus's events, in flight

    def on_event(self, event: dict[str, Any]) -> None:
        """Talking changes for browsers, and a browser's PeerConnection news. Called from the
        long poll: whatever the server must do runs in a task of its own, in arrival order."""
        kind = event.get("janus")
        data = (event.get("plugindata") or {}).get("data") or {}
        if kind == "event" and data.get("audiobridge") in ("talking", "stopped-talking"):
            self._talking_event(data)
            return
        found = self.handles.get(int(event.get("sender") or 0))
        if found is None:
            return
        room, browser = found
        if kind == "webrtcup":
            log.info(
                "browser audio up",
                meeting=room.meeting_id,
                attendee=browser.attendee_id,
                ms=round((time.monotonic() - browser.joined_at) * 1000, 1),
            )
        elif kind == "media":
            log.info(
                "browser audio",
                attendee=browser.attendee_id,
                receiving=event.get("receiving"),
                type=event.get("type"),
            )
        elif kind == "trickle" and isinstance(event.get("candidate"), dict):
            if self._listeners.on_browser_candidate is not None:
                candidate = event["candidate"]
                self._spawn(
                    self._listeners.on_browser_candidate(
                        room.meeting_id, browser.attendee_id, candidate
                    )
                )
        elif kind == "hangup":
            reason = str(event.get("reason") or "hangup")
            self.handles.pop(browser.handle or 0, None)
            if room.members.get(browser.attendee_id) is browser:
                del room.members[browser.attendee_id]
            self._spawn(self._detach(browser))
            log.info("browser audio hung up", attendee=browser.attendee_id, reason=reason)
            if self._listeners.on_browser_lost is not None:
                self._spawn(
                    self._listeners.on_browser_lost(room.meeting_id, browser.attendee_id, reason)
                )

    def _talking_event(self, data: dict[str, Any]) -> None:
        # Every handle in the room gets its own copy: only a change of ours goes on.
        room = self.rooms.get(int(data.get("room") or 0))
        if room is None:
            return
        talking = data.get("audiobridge") == "talking"
        participant = int(data.get("id") or 0)
        for member in room.members.values():
            if member.participant == participant and member.talking != talking:
                member.talking = talking
                if self._listeners.on_talking is not None:
                    self._spawn(
                        self._listeners.on_talking(room.meeting_id, member.attendee_id, talking)
                    )

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("a media event was not handled")

        task = asyncio.create_task(run(), name="media event")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
