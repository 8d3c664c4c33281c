"""Rules shared by the conference actions: who may act, who may unmute, and the events that state
changes produce. Pure functions over ``bridge.conference.server.model`` data (no I/O, clock or randomness).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..wire import SERVER_SENDER, Category, Hand, Permission, Role
from .errors import BadRequest, Forbidden, NotFound
from .model import Attendee, Caller, Event, Meeting, Settings


@dataclass(slots=True)
class Space:
    """A space: its settings, its active meeting and recently ended ones."""

    id: str
    name: str
    settings: Settings
    active: str | None = None
    meetings: dict[str, Meeting] = dataclasses.field(default_factory=dict)


def target(meeting: Meeting, attendee_id: str, attendee_type: str | None) -> Attendee:
    a = meeting.attendees.get(attendee_id)
    # The type is part of the resource path: a mismatch names no attendee, as an unknown id.
    if a is None or (attendee_type is not None and a.type != attendee_type):
        kind = f"{attendee_type} " if attendee_type else ""
        raise NotFound(f"no {kind}attendee {attendee_id} in meeting {meeting.id}")
    return a


def require_moderator(caller: Caller, action: str) -> None:
    if caller.role is not Role.MODERATOR:
        raise Forbidden(f"only a moderator may {action}")


def self_or_admin(caller: Caller, a: Attendee, action: str) -> bool:
    """True when a moderator acts on someone else's attendee; False when the owner acts."""
    if a.owner == caller.token_name:
        return False
    if caller.role is Role.MODERATOR:
        return True
    raise Forbidden(f"only its owner or a moderator may {action} attendee {a.id}", "not_owner")


def attendee_role(caller: Caller, *, guest: bool, requested: Role | None) -> Role:
    if requested is Role.BRIDGE:
        raise BadRequest("role must be moderator, member or guest")
    if caller.role is Role.BRIDGE:
        # The bridge authenticated the phone (digest, allow list) and vouches for its role.
        if requested is not None:
            return requested
        return Role.GUEST if guest else Role.MEMBER
    if requested is not None and requested is not caller.role:
        raise Forbidden(f"a {caller.role} token may not join as {requested}")
    return caller.role


def may_unmute(space: Space, a: Attendee) -> bool:
    return (
        not space.settings.prevent_unmuting or a.role is Role.MODERATOR or a.hand is Hand.ACCEPTED
    )


def mutes_on_entry(space: Space, a: Attendee) -> bool:
    # "Prevent unmuting" mutes on entry too: entering unmuted would break the invariant.
    return space.settings.mute_on_entry or not may_unmute(space, a)


def apply_media(
    space: Space,
    a: Attendee,
    audio: bool | None,
    video: bool | None,
    held: bool | None,
    *,
    admin: bool,
    clear_hand: bool = False,
) -> list[Event]:
    """Apply an allowed change; events for what changed (and the admin's command to the target)."""
    before = (a.audio, a.video, a.held, a.hand)
    if audio is not None:
        a.audio = audio
    if video is not None:
        a.video = video
    if held is not None:
        a.held = held
    if (clear_hand or (admin and audio is False)) and a.hand is Hand.ACCEPTED:
        a.hand = Hand.LOWERED
    events = []
    sender = SERVER_SENDER if admin else a.id
    if (a.audio, a.video) != before[:2]:
        events.append(Event(Category.TRACKSSTATUS, space.id, a.tracks(), sender))
    if (a.audio, a.video, a.held, a.hand) != before:
        events.append(Event(Category.ATTENDEE_UPDATED, space.id, a.to_json(), sender))
    if admin and (audio is not None or video is not None):
        # Sent even without a change: the endpoint may disagree with the server's state.
        events.append(Event(Category.REQUEST_TRACKSSTATUS, space.id, a.tracks()))
    return events


def force_mute(space: Space, a: Attendee) -> list[Event]:
    """The server mutes ``a`` on its own and commands its endpoint to follow."""
    a.audio = False
    return [
        Event(Category.TRACKSSTATUS, space.id, a.tracks()),
        Event(Category.ATTENDEE_UPDATED, space.id, a.to_json()),
        Event(Category.REQUEST_TRACKSSTATUS, space.id, a.tracks()),
    ]


def raise_hand(space: Space, a: Attendee) -> list[Event]:
    a.hand = Hand.RAISED
    return [
        requested(space, a, Permission.UNMUTE),
        Event(Category.ATTENDEE_UPDATED, space.id, a.to_json(), a.id),
    ]


def announce_lobby(space: Space, meeting: Meeting) -> list[Event]:
    return [requested(space, meeting.attendees[i], Permission.MEETING_JOIN) for i in meeting.lobby]


def requested(space: Space, a: Attendee, kind: Permission) -> Event:
    content = {"targetId": a.id, "kind": str(kind), "displayName": a.display_name}
    return Event(Category.PERMISSION_REQUESTED, space.id, content, a.id)


def permission(space: Space, a: Attendee, kind: Permission, state: str, sender: str) -> Event:
    content = {"targetId": a.id, "kind": str(kind), "state": str(state)}
    return Event(Category.PERMISSION_UPDATED, space.id, content, sender)
