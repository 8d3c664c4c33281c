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

A browser attendee (``webrtc.BrowserAudio``) is in the mixer from the join that brought its JSEP
offer (:meth:`MediaSync.offer_browser`) until it leaves, under the same mute rule: the server
holds its Janus handle, so its mute is the mixer's and no renegotiation undoes it.

Who talks (``app.event.attendee.talking``) is the mixer's last word about an attendee, shown
only while the conference has that attendee unmuted: a muted participant's audio never reaches
Janus's level meter, so its last word would otherwise stay "talking" for as long as it is muted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from ..wire import PHONE, SERVER_SENDER, Category, MediaEndpoint, MediaOffer
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

    async def add_browser(
        self,
        meeting_id: str,
        attendee_id: str,
        display_name: str,
        offer: dict[str, Any],
        muted: bool,
    ) -> dict[str, Any] | None: ...

    async def remove(self, meeting_id: str, attendee_id: str) -> None: ...

    async def set_muted(self, meeting_id: str, attendee_id: str, muted: bool) -> None: ...

    async def end_meeting(self, meeting_id: str) -> None: ...


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...


@dataclass(slots=True)
class _Member:
    meeting_id: str
    endpoint: MediaEndpoint | None
    """Where the bridge sends a phone's audio; None for a browser."""
    muted: bool


class MediaSync:
    """A :class:`Publisher` that keeps the mixer in line with the conference before publishing."""

    def __init__(self, conference: Conference, plane: Plane, publisher: Publisher) -> None:
        self._conference = conference
        self._plane = plane
        self._publisher = publisher
        self._members: dict[str, _Member] = {}  # attendee id → its place in the mixer
        self._offers: dict[str, dict[str, Any]] = {}  # a browser's JSEP offer, until its join
        self._answers: dict[str, dict[str, Any]] = {}  # Janus's answer, until it is taken
        self._heard: set[str] = set()  # attendees the mixer last said talk
        self._shown: dict[str, str] = {}  # attendee → space, for those shown talking
        # One change at a time: the mixer's state follows the rules' order of events.
        self._lock = asyncio.Lock()

    async def publish(self, events: Sequence[Event]) -> None:
        async with self._lock:
            # A reported talking (a phone's level, from the bridge) is the mixer's word for
            # that attendee: shown by the same rule as Janus's own talking events.
            kept: list[Event] = []
            for event in events:
                if event.category is Category.ATTENDEE_TALKING and event.sender != SERVER_SENDER:
                    target = event.content.get("attendeeId")
                    if isinstance(target, str):
                        kept += self._reported(event.topic, target, event.content.get("talking"))
                else:
                    kept.append(event)
            extra = await self._apply(kept)
        await self._publisher.publish([*kept, *extra])

    def _reported(self, space_id: str, attendee_id: str, talking: object) -> list[Event]:
        """The word of the mixer (browsers) or of the bridge (phones) on who talks: the event for
        what is shown, if that changed."""
        if talking is True:
            self._heard.add(attendee_id)
        else:
            self._heard.discard(attendee_id)
        return self._talk(space_id, attendee_id)

    def offer_browser(self, attendee_id: str, offer: dict[str, Any]) -> None:
        """The JSEP offer of a browser attendee whose join is about to be published: the
        publication joins it to the mixer, and :meth:`take_answer` then has Janus's answer."""
        self._offers[attendee_id] = offer

    def take_answer(self, attendee_id: str) -> dict[str, Any] | None:
        """Janus's answer to :meth:`offer_browser`'s offer; None when the mixer refused it or the
        attendee is not admitted."""
        self._offers.pop(attendee_id, None)
        return self._answers.pop(attendee_id, None)

    def talkers(self, space_id: str) -> list[str]:
        """The attendees of the space shown as talking now."""
        return [a for a, space in self._shown.items() if space == space_id]

    async def talking(self, meeting_id: str, attendee_id: str, talking: bool) -> None:
        """The mixer's word (Janus's talking events): published when what is shown changes."""
        async with self._lock:
            space_id = self._space_of(meeting_id)
            if space_id is None or self._members.get(attendee_id) is None:
                return
            events = self._reported(space_id, attendee_id, talking)
        await self._publisher.publish(events)

    def complete(self, outcome: Outcome) -> None:
        """Add the media endpoint to a join's answer (its events are published already)."""
        body = outcome.body
        if body is None or body.get("attendeeType") != PHONE or "mediaState" not in body:
            return
        member = self._members.get(str(body.get("attendeeId")))
        if member is not None and member.endpoint is not None:
            body["media"] = member.endpoint.to_json()

    async def endpoint_changed(
        self, meeting_id: str, attendee_id: str, endpoint: MediaEndpoint
    ) -> None:
        """The mixer re-joined an attendee (a restart) on a new endpoint: tell the bridge."""
        member = self._members.get(attendee_id)
        if member is None or member.endpoint is None:
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
                        self._heard.discard(attendee_id)
                        self._shown.pop(attendee_id, None)
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
        offer = self._offers.pop(attendee_id, None)
        browser = offer is not None or (member is not None and member.endpoint is None)
        wanted = (
            attendee is not None
            and attendee.admitted
            and (attendee.media_offer is not None or browser)
        )
        if member is not None and (not wanted or member.meeting_id != meeting_id):
            del self._members[attendee_id]
            self._heard.discard(attendee_id)
            self._shown.pop(attendee_id, None)
            await self._plane.remove(member.meeting_id, attendee_id)
            member = None
        if not wanted or attendee is None or meeting_id is None:
            return []
        muted = not attendee.audio or attendee.held
        if member is None and offer is not None:
            answer = await self._plane.add_browser(
                meeting_id, attendee_id, attendee.display_name, offer, muted
            )
            if answer is not None:
                self._members[attendee_id] = _Member(meeting_id, None, muted)
                self._answers[attendee_id] = answer
            return []
        if member is None:
            if attendee.media_offer is None:
                return []  # a browser whose audio ended: it needs a new offer
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
        return self._talk(space_id, attendee_id)

    def _talk(self, space_id: str, attendee_id: str) -> list[Event]:
        """The talking event, when what is shown for the attendee changes: the mixer's word,
        while the conference has the attendee unmuted."""
        attendee = self._find(space_id, attendee_id)
        audible = attendee is not None and attendee.audio and not attendee.held
        shown = audible and attendee_id in self._heard
        if shown == (attendee_id in self._shown):
            return []
        if shown:
            self._shown[attendee_id] = space_id
        else:
            del self._shown[attendee_id]
        content = {"attendeeId": attendee_id, "talking": shown}
        return [Event(Category.ATTENDEE_TALKING, space_id, content)]

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
