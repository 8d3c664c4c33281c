"""The conference's decisions applied to its media plane (docs/mixer.md).

:class:`MediaSync` stands between the rules and the Socket.IO publisher: before a request's events go
out, it brings the mixer in line with the state those events describe. A phone attendee with a media
offer is in the meeting's mixer exactly while it is admitted; it is muted there exactly while the
server has it muted or on hold. So an admin mute, a mute on entry, a mute all and a hold silence the
stream at the mixer, whatever the phone (or the bridge) does; a lobby caller is not in the mixer, so
it hears nothing of the meeting and the meeting nothing of it.

Whenever the mixer gives an attendee a new endpoint (its first join, an admission from the lobby, a
mixer restart), the space gets ``app.event.attendee.media`` so that the bridge points its meeting leg
there; the join answer carries it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from ..wire import PHONE, Category, MediaEndpoint, MediaOffer
from .model import Attendee, Event, Outcome
from .state import Conference

log = structlog.get_logger("bridge.conference.server.media")

#: Events whose attendee's place in the mixer may have changed; others change no attendee's media.
_ONE = frozenset(
    {
        Category.ATTENDEE_JOINED,
        Category.ATTENDEE_UPDATED,
        Category.TRACKSSTATUS,
        Category.REQUEST_TRACKSSTATUS,
        Category.PERMISSION_UPDATED,
        Category.ATTENDEE_LEFT,
    }
)


class Plane(Protocol):
    """The mixer as the sync uses it (``mixer.plane.MediaPlane``)."""

    @property
    def ready(self) -> bool: ...

    async def add_phone(
        self,
        meeting_id: str,
        attendee_id: str,
        display_name: str,
        offer: MediaOffer,
        muted: bool,
    ) -> MediaEndpoint | None: ...

    async def remove(self, meeting_id: str, attendee_id: str) -> None: ...

    async def set_muted(self, meeting_id: str, attendee_id: str, muted: bool) -> None: ...

    async def end_meeting(self, meeting_id: str) -> None: ...


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...


@dataclass(slots=True)
class _Member:
    meeting_id: str
    endpoint: MediaEndpoint
    muted: bool


class MediaSync:
    """A :class:`Publisher` that keeps the mixer in line with the conference before publishing."""

    def __init__(self, conference: Conference, plane: Plane, publisher: Publisher) -> None:
        self._conference = conference
        self._plane = plane
        self._publisher = publisher
        self._members: dict[str, _Member] = {}  # attendee id → its place in the mixer
        # One change at a time: the mixer's state follows the rules' order of events.
        self._lock = asyncio.Lock()

    async def publish(self, events: Sequence[Event]) -> None:
        async with self._lock:
            extra = await self._apply(events)
        await self._publisher.publish([*events, *extra])

    def complete(self, outcome: Outcome) -> None:
        """Add the media endpoint to a join's answer (its events are published already)."""
        body = outcome.body
        if body is None or body.get("attendeeType") != PHONE or "mediaState" not in body:
            return
        member = self._members.get(str(body.get("attendeeId")))
        if member is not None:
            body["media"] = member.endpoint.to_json()

    async def endpoint_changed(
        self, meeting_id: str, attendee_id: str, endpoint: MediaEndpoint
    ) -> None:
        """The mixer re-joined an attendee (a restart) on a new endpoint: tell the bridge."""
        member = self._members.get(attendee_id)
        if member is None:
            return
        member.endpoint = endpoint
        space = self._space_of(meeting_id)
        if space is not None:
            await self._publisher.publish([_media_event(space, attendee_id, endpoint)])

    async def resync(self) -> None:
        """After the mixer came back: add every admitted phone it does not have (those that joined
        or were admitted while it was down), and tell the bridge where their audio goes."""
        events: list[Event] = []
        async with self._lock:
            for space_id in self._conference.space_ids():
                for attendee in self._conference.attendees(space_id):
                    if attendee.id not in self._members:
                        events += await self._sync(space_id, attendee.id)
        if events:
            await self._publisher.publish(events)

    # -- the sync ---------------------------------------------------------------------------------
    async def _apply(self, events: Sequence[Event]) -> list[Event]:
        extra: list[Event] = []
        for event in events:
            if event.category is Category.MEETING_ENDED:
                meeting_id = str(event.content.get("meetingId"))
                for attendee_id, member in list(self._members.items()):
                    if member.meeting_id == meeting_id:
                        del self._members[attendee_id]
                await self._plane.end_meeting(meeting_id)
            elif event.category is Category.ALL_MUTED:
                for attendee in self._conference.attendees(event.topic):
                    extra += await self._sync(event.topic, attendee.id)
            elif event.category in _ONE:
                target = event.content.get("attendeeId") or event.content.get("targetId")
                if isinstance(target, str):
                    extra += await self._sync(event.topic, target)
        return extra

    async def _sync(self, space_id: str, attendee_id: str) -> list[Event]:
        meeting_id = self._conference.active_meeting_id(space_id)
        attendee = self._find(space_id, attendee_id)
        member = self._members.get(attendee_id)
        wanted = attendee is not None and attendee.admitted and attendee.media_offer is not None
        if member is not None and (not wanted or member.meeting_id != meeting_id):
            del self._members[attendee_id]
            await self._plane.remove(member.meeting_id, attendee_id)
            member = None
        if not wanted or attendee is None or attendee.media_offer is None or meeting_id is None:
            return []
        muted = not attendee.audio or attendee.held
        if member is None:
            endpoint = await self._plane.add_phone(
                meeting_id, attendee_id, attendee.display_name, attendee.media_offer, muted
            )
            if endpoint is None:
                return []  # the mixer is down: the restart re-adds everyone it knew of
            self._members[attendee_id] = _Member(meeting_id, endpoint, muted)
            return [_media_event(space_id, attendee_id, endpoint)]
        if member.muted != muted:
            member.muted = muted
            await self._plane.set_muted(meeting_id, attendee_id, muted)
        return []

    def _find(self, space_id: str, attendee_id: str) -> Attendee | None:
        return self._conference.attendee(space_id, attendee_id)

    def _space_of(self, meeting_id: str) -> str | None:
        return self._conference.space_of(meeting_id)


def _media_event(space_id: str, attendee_id: str, endpoint: MediaEndpoint) -> Event:
    return Event(
        Category.ATTENDEE_MEDIA,
        space_id,
        {"attendeeId": attendee_id, "media": endpoint.to_json()},
    )
