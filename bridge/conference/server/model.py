"""Plain data of the conference server: roles, settings, attendees, meetings and the events the rules
emit. Pure: no I/O, no clock (timestamps are passed in), no randomness (ids are passed in).
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field
from typing import Any

from ..wire import (
    EVENT_VERSION,
    SERVER_SENDER,
    Category,
    GuestPolicy,
    Hand,
    MediaOffer,
    MeetingState,
    Role,
    is_modern,
)

JSON = dict[str, Any]
"""A JSON object as the wire carries it."""


DEFAULT_CAPACITY = 500
"""Attendees (in the meeting and its lobby) one meeting holds unless configured otherwise: bounds
memory and the size of roster answers and mute-all fan-out."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a request: the name and role of the bearer token (never the token itself)."""

    token_name: str
    """The token's configured name; attendees created with the token are owned by it."""
    role: Role
    """What the token may do."""


@dataclass(frozen=True, slots=True)
class Event:
    """One ``MEDIA_SESSION_RESPONSE`` to send to a space's room."""

    category: Category
    """What happened."""
    topic: str
    """The space id (``topicId`` on the wire, and the Socket.IO room)."""
    content: JSON
    """The category's payload, as fixed by the contract."""
    sender: str = SERVER_SENDER
    """The attendee whose action caused the event, or ``"server"``."""

    def payload(self) -> JSON:
        """The wire form: ``{category, topicId, sender, content, version}``."""
        return {
            "category": str(self.category),
            "topicId": self.topic,
            "sender": self.sender,
            "content": self.content,
            "version": EVENT_VERSION,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action produced: the events to emit, in order, and the HTTP answer's body."""

    events: tuple[Event, ...] = ()
    """Events to emit to the space's room, in this order, before answering."""
    body: JSON | None = None
    """The JSON answer; ``None`` for 204 No Content."""


@dataclass(frozen=True, slots=True)
class Settings:
    """A space's settings."""

    prevent_unmuting: bool = False
    """Only moderators and attendees with an accepted hand may unmute."""
    mute_on_entry: bool = False
    """Attendees enter muted and are told so with ``request.tracksstatus.change``."""
    guest_policy: GuestPolicy = GuestPolicy.ALWAYS_ACCEPT
    """What happens to guests who join."""
    auto_start: bool = True
    """Asking for the active meeting of an idle space starts one."""

    def to_json(self) -> JSON:
        """The contract's ``settings`` object."""
        return {
            "preventUnmuting": self.prevent_unmuting,
            "muteOnEntry": self.mute_on_entry,
            "guestPolicy": str(self.guest_policy),
            "autoStart": self.auto_start,
        }


@dataclass(slots=True)
class Attendee:
    """One participant of a meeting (mutable: the conference rules change it in place)."""

    id: str
    type: str
    display_name: str
    role: Role
    owner: str
    """Token name of the creator: the only caller, besides moderators, that may act for it."""
    version: str | None
    guest: bool
    admitted: bool
    joined_at: float
    audio: bool = False
    video: bool = False
    held: bool = False
    hand: Hand = Hand.LOWERED
    media_session: str | None = None
    """Last ``mdsrvSessionId`` reported (kept for consoles; the rules ignore it)."""
    endpoint: str | None = None
    """What the client says it stands for (``sip/legacy``, ``sip/1.1`` from the bridge): shown to
    consoles, ignored by the rules."""
    media_offer: MediaOffer | None = None
    """Where the bridge takes this phone's meeting audio (the join's ``media``): the media plane
    joins the attendee to the meeting's mixer with it once admitted."""

    @property
    def legacy(self) -> bool:
        """A client without ``version`` or below 1.1: the server commands it explicitly."""
        return not is_modern(self.version)

    def to_json(self) -> JSON:
        """The contract's roster entry."""
        return {
            "attendeeId": self.id,
            "attendeeType": self.type,
            "displayName": self.display_name,
            "role": str(self.role),
            "version": self.version,
            "mediaState": self.media_state(),
            "hand": str(self.hand),
            "held": self.held,
            "guest": self.guest,
            "admitted": self.admitted,
            "joinedAt": iso(self.joined_at),
            "endpoint": self.endpoint,
        }

    def media_state(self) -> JSON:
        """``{"audio", "video"}``: true means sending."""
        return {"audio": self.audio, "video": self.video}

    def tracks(self) -> JSON:
        """Content of ``tracksstatus`` and ``request.tracksstatus.change``."""
        return {"attendeeId": self.id, "audio": self.audio, "video": self.video}


@dataclass(slots=True)
class Meeting:
    """One meeting of a space; ended meetings are kept (bounded) so that their state can be read."""

    id: str
    space_id: str
    started_at: float
    state: MeetingState = MeetingState.ACTIVE
    attendees: dict[str, Attendee] = field(default_factory=dict)
    """By id, in joining order."""
    lobby: dict[str, float] = field(default_factory=dict)
    """Attendee id → time it asked to join, in request order (dicts keep insertion order)."""

    def moderator_present(self) -> bool:
        """Whether an admitted moderator can see lobby requests now."""
        return any(a.admitted and a.role is Role.MODERATOR for a in self.attendees.values())


# An attendee's joinedAt is written in the join's answer and in each event about them: formatting
# costs more than the lookup, and the recent attendees' timestamps are the ones asked for.
@functools.lru_cache(maxsize=4096)
def iso(timestamp: float) -> str:
    """ISO-8601 UTC with a ``Z``, as the contract's ``joinedAt`` and ``requestedAt`` are written."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
