"""Events of the conference server's Socket.IO channel, as one closed set of frozen values.

Server events come from ``MEDIA_SESSION_RESPONSE`` payloads (``{category, topicId, sender, content,
version}``) through :func:`parse_event`, a pure function: unknown categories are ignored (a newer
server may send more), malformed payloads are reported to ``on_malformed`` and dropped, and nothing a
server sends makes it raise. Connection events (:class:`Connected`, :class:`Disconnected`,
:class:`Resynced`) come from :class:`bridge.conference.client.realtime.SpacesSubscription` itself.

Every space event carries ``space_id`` (the payload's ``topicId``) first, so that one subscription can
serve many spaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..wire import Category, MediaEndpoint
from .models import (
    PayloadError,
    RosterEntry,
    Settings,
    flag,
    items,
    obj,
    optional_text,
    read_media_endpoint,
    read_roster_entry,
    read_settings,
    text,
)

__all__ = [
    "CATEGORIES",
    "AttendeeJoined",
    "AttendeeLeft",
    "AttendeeMedia",
    "AttendeeUpdated",
    "Connected",
    "Disconnected",
    "MeetingEnded",
    "MuteAllDone",
    "MuteAllStarted",
    "PermissionRequested",
    "PermissionUpdated",
    "Resynced",
    "SettingsUpdated",
    "SpacesEvent",
    "TracksStatus",
    "TracksStatusChangeRequest",
    "parse_event",
]


@dataclass(frozen=True, slots=True)
class TracksStatus:
    """``tracksstatus``: an attendee's media state changed (a report, not an order)."""

    space_id: str
    attendee_id: str
    audio: bool
    video: bool


@dataclass(frozen=True, slots=True)
class TracksStatusChangeRequest:
    """``request.tracksstatus.change``: the server orders the attendee's endpoint to this state
    (admin mute, mute on entry, mute all of a legacy client, a refused legacy unmute)."""

    space_id: str
    attendee_id: str
    audio: bool
    video: bool


@dataclass(frozen=True, slots=True)
class MuteAllStarted:
    """``app.event.all.parties.muting``: a moderator started muting everyone."""

    space_id: str
    initiator: str | None


@dataclass(frozen=True, slots=True)
class MuteAllDone:
    """``app.event.all.parties.muted``: everyone but ``exclude`` (initiator included) is muted."""

    space_id: str
    exclude: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PermissionRequested:
    """``app.event.meeting.permission.requested``: ``kind`` is ``PERMISSION_UNMUTE`` (a raised
    hand) or ``MEETING_JOIN`` (a guest in the lobby)."""

    space_id: str
    target_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class PermissionUpdated:
    """``app.event.meeting.permission.updated``: ``state`` is ``GRANTED``, ``REJECTED`` or
    ``WITHDRAWN``."""

    space_id: str
    target_id: str
    kind: str
    state: str


@dataclass(frozen=True, slots=True)
class MeetingEnded:
    """``app.event.meeting.ended``: every attendee of the meeting has been removed."""

    space_id: str
    meeting_id: str


@dataclass(frozen=True, slots=True)
class AttendeeJoined:
    """``app.event.attendee.joined``."""

    space_id: str
    entry: RosterEntry


@dataclass(frozen=True, slots=True)
class AttendeeUpdated:
    """``app.event.attendee.updated``: media state, hand, hold or admission changed."""

    space_id: str
    entry: RosterEntry


@dataclass(frozen=True, slots=True)
class AttendeeLeft:
    """``app.event.attendee.left`` (left, removed, denied at the lobby)."""

    space_id: str
    entry: RosterEntry


@dataclass(frozen=True, slots=True)
class AttendeeMedia:
    """``app.event.attendee.media``: the media plane gave a phone attendee a (new) endpoint, after
    an admission or a mixer restart; the bridge points the call's meeting leg there."""

    space_id: str
    attendee_id: str
    media: MediaEndpoint


@dataclass(frozen=True, slots=True)
class SettingsUpdated:
    """``app.event.space.settings.updated``: the space's settings after a change."""

    space_id: str
    settings: Settings


@dataclass(frozen=True, slots=True)
class Connected:
    """The Socket.IO connection is up and every remembered space is subscribed."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection dropped (or could not be made); the subscription keeps trying."""

    reason: str


@dataclass(frozen=True, slots=True)
class Resynced:
    """After a *re*connection: ``space_ids`` are subscribed again, but events were missed while
    disconnected, so callers must re-read the state they rely on (docs/behaviour.md, Meeting
    lifecycle)."""

    space_ids: tuple[str, ...]


SpacesEvent = (
    TracksStatus
    | TracksStatusChangeRequest
    | MuteAllStarted
    | MuteAllDone
    | PermissionRequested
    | PermissionUpdated
    | MeetingEnded
    | AttendeeJoined
    | AttendeeUpdated
    | AttendeeLeft
    | AttendeeMedia
    | SettingsUpdated
    | Connected
    | Disconnected
    | Resynced
)

# --- parsing: one reader per category ----------------------------------------------------------------

_Reader = Callable[[str, Mapping[str, Any]], SpacesEvent]


def _tracks_status(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return TracksStatus(space, text(c, "attendeeId"), flag(c, "audio"), flag(c, "video"))


def _change_request(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return TracksStatusChangeRequest(
        space, text(c, "attendeeId"), flag(c, "audio"), flag(c, "video")
    )


def _muting(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return MuteAllStarted(space, optional_text(c, "initiator"))


def _muted(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    exclude = tuple(text(obj(e, "exclude entry"), "attendeeId") for e in items(c, "exclude"))
    return MuteAllDone(space, exclude)


def _requested(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return PermissionRequested(space, text(c, "targetId"), text(c, "kind"))


def _updated(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return PermissionUpdated(space, text(c, "targetId"), text(c, "kind"), text(c, "state"))


def _ended(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return MeetingEnded(space, text(c, "meetingId"))


def _joined(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return AttendeeJoined(space, read_roster_entry(c))


def _attendee_updated(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return AttendeeUpdated(space, read_roster_entry(c))


def _left(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return AttendeeLeft(space, read_roster_entry(c))


def _media(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    media = read_media_endpoint(c.get("media"))
    if media is None:
        raise PayloadError("media: missing")
    return AttendeeMedia(space, text(c, "attendeeId"), media)


def _settings(space: str, c: Mapping[str, Any]) -> SpacesEvent:
    return SettingsUpdated(space, read_settings(c.get("settings")))


CATEGORIES: Mapping[str, _Reader] = {
    Category.TRACKSSTATUS: _tracks_status,
    Category.REQUEST_TRACKSSTATUS: _change_request,
    Category.ALL_MUTING: _muting,
    Category.ALL_MUTED: _muted,
    Category.PERMISSION_REQUESTED: _requested,
    Category.PERMISSION_UPDATED: _updated,
    Category.MEETING_ENDED: _ended,
    Category.ATTENDEE_JOINED: _joined,
    Category.ATTENDEE_UPDATED: _attendee_updated,
    Category.ATTENDEE_LEFT: _left,
    Category.ATTENDEE_MEDIA: _media,
    Category.SETTINGS_UPDATED: _settings,
}
"""Every category this client understands, with its content reader."""


def parse_event(
    payload: object, *, on_malformed: Callable[[str], None] | None = None
) -> SpacesEvent | None:
    """Turn one ``MEDIA_SESSION_RESPONSE`` payload into a typed event.

    Returns ``None`` for an unknown category (ignored silently) and for a malformed payload, which is
    also reported to ``on_malformed`` with the reason so that the caller can count and log it.
    Never raises: a broken server must not break the bridge.
    """
    try:
        envelope = obj(payload, "MEDIA_SESSION_RESPONSE")
        category = text(envelope, "category")
        reader = CATEGORIES.get(category)
        if reader is None:
            return None
        return reader(text(envelope, "topicId"), obj(envelope.get("content"), "content"))
    except PayloadError as exc:
        if on_malformed is not None:
            on_malformed(str(exc))
        return None
