"""Typed values of the conference API (docs/conference-api.md) and their strict JSON readers.

Every value is a frozen dataclass so that calls keep plain data (docs/behaviour.md, Meeting
lifecycle) and events can carry it. Readers accept extra keys (a newer server may add fields) but
reject missing or mistyped ones with :class:`PayloadError`; the HTTP client turns that into
``InvalidResponse`` and the event parser into "malformed, counted, dropped".
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..wire import CODECS, GuestPolicy, Hand, MediaEndpoint, Role

__all__ = [
    "Attendee",
    "DialInResult",
    "GuestPolicy",
    "Hand",
    "JoinResult",
    "LobbyEntry",
    "MediaState",
    "MediaStateResult",
    "Meeting",
    "MeetingDetails",
    "PayloadError",
    "Role",
    "RosterEntry",
    "Settings",
]


E = TypeVar("E", bound=enum.StrEnum)


class PayloadError(ValueError):
    """A JSON value does not have the shape the API contract fixes."""


@dataclass(frozen=True, slots=True)
class MediaState:
    """What an attendee sends: ``True`` means sending (unmuted)."""

    audio: bool
    video: bool


@dataclass(frozen=True, slots=True)
class Settings:
    """A space's meeting settings."""

    prevent_unmuting: bool
    mute_on_entry: bool
    guest_policy: GuestPolicy
    auto_start: bool


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One attendee as the roster and the ``app.event.attendee.*`` events show it."""

    attendee_id: str
    attendee_type: str
    display_name: str
    role: Role
    version: str | None
    """Client version the attendee joined with; ``None`` for a legacy (pre-1.1) client."""
    media_state: MediaState
    hand: Hand
    held: bool
    guest: bool
    admitted: bool
    joined_at: str | None
    """ISO-8601 UTC join time as the server wrote it; kept as text because only people read it."""


Attendee = RosterEntry


@dataclass(frozen=True, slots=True)
class Meeting:
    """The active meeting of a space."""

    meeting_id: str
    space_id: str
    settings: Settings


@dataclass(frozen=True, slots=True)
class LobbyEntry:
    """A guest waiting for a moderator's decision."""

    attendee_id: str
    attendee_type: str
    display_name: str
    requested_at: str | None


@dataclass(frozen=True, slots=True)
class MeetingDetails:
    """A meeting with its roster and lobby (``GET /spaces/:spaceId/meetings/:meetingId``)."""

    meeting_id: str
    space_id: str
    settings: Settings
    state: str
    """``"active"`` or ``"ended"``."""
    attendees: tuple[RosterEntry, ...]
    lobby: tuple[LobbyEntry, ...]
    moderator_present: bool


@dataclass(frozen=True, slots=True)
class JoinResult:
    """The server's answer to a join: who the attendee is and whether it is in or in the lobby."""

    attendee_id: str
    attendee_type: str
    role: Role
    media_state: MediaState
    admitted: bool
    media: MediaEndpoint | None = None
    """Where the attendee's audio goes; None when the server has no media plane."""


@dataclass(frozen=True, slots=True)
class MediaStateResult:
    """The server's answer to a media-state change: the state it now holds."""

    attendee_id: str
    media_state: MediaState
    held: bool


# --- readers ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialInResult:
    """The space a dial-in ID names (``POST /api/dialin``)."""

    space_id: str
    host_pin: bool
    """The space has a host PIN: the menu asks for it."""
    host: bool
    """The PIN given was the space's host PIN."""


def read_dial_in(value: object) -> DialInResult:
    data = obj(value, "dial-in answer")
    return DialInResult(text(data, "spaceId"), flag(data, "hostPin"), flag(data, "host"))


def obj(value: object, what: str) -> Mapping[str, Any]:
    """``value`` as a JSON object, or :class:`PayloadError` naming ``what`` it should have been."""
    if not isinstance(value, Mapping):
        raise PayloadError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise PayloadError(f"{key!r}: expected a string, got {type(value).__name__}")
    return value


def optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{key!r}: expected a string or null, got {type(value).__name__}")
    return value


def flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    # bool is checked by type, not truthiness: 0, "false" or a missing key are contract violations.
    if not isinstance(value, bool):
        raise PayloadError(f"{key!r}: expected true or false, got {type(value).__name__}")
    return value


def items(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise PayloadError(f"{key!r}: expected a list, got {type(value).__name__}")
    return value


def choice(data: Mapping[str, Any], key: str, kind: type[E]) -> E:
    value = text(data, key)
    try:
        return kind(value)
    except ValueError:
        raise PayloadError(f"{key!r}: {value!r} is not a {kind.__name__}") from None


def read_media_state(value: object) -> MediaState:
    data = obj(value, "mediaState")
    return MediaState(audio=flag(data, "audio"), video=flag(data, "video"))


def read_settings(value: object) -> Settings:
    data = obj(value, "settings")
    return Settings(
        prevent_unmuting=flag(data, "preventUnmuting"),
        mute_on_entry=flag(data, "muteOnEntry"),
        guest_policy=choice(data, "guestPolicy", GuestPolicy),
        # autoStart is the one setting a client never changes; an older server may omit it.
        auto_start=data.get("autoStart") is True,
    )


def read_roster_entry(value: object) -> RosterEntry:
    data = obj(value, "attendee")
    return RosterEntry(
        attendee_id=text(data, "attendeeId"),
        attendee_type=text(data, "attendeeType"),
        display_name=text(data, "displayName"),
        role=choice(data, "role", Role),
        version=optional_text(data, "version"),
        media_state=read_media_state(data.get("mediaState")),
        hand=choice(data, "hand", Hand),
        held=flag(data, "held"),
        guest=flag(data, "guest"),
        admitted=flag(data, "admitted"),
        joined_at=optional_text(data, "joinedAt"),
    )


def read_roster(value: object) -> tuple[RosterEntry, ...]:
    if not isinstance(value, list):
        raise PayloadError(f"roster: expected a list, got {type(value).__name__}")
    return tuple(read_roster_entry(entry) for entry in value)


def read_meeting(value: object) -> Meeting:
    data = obj(value, "meeting")
    return Meeting(
        meeting_id=text(data, "meetingId"),
        space_id=text(data, "spaceId"),
        settings=read_settings(data.get("settings")),
    )


def read_lobby_entry(value: object) -> LobbyEntry:
    data = obj(value, "lobby entry")
    return LobbyEntry(
        attendee_id=text(data, "attendeeId"),
        attendee_type=text(data, "attendeeType"),
        display_name=text(data, "displayName"),
        requested_at=optional_text(data, "requestedAt"),
    )


def read_meeting_details(value: object) -> MeetingDetails:
    data = obj(value, "meeting")
    return MeetingDetails(
        meeting_id=text(data, "meetingId"),
        space_id=text(data, "spaceId"),
        settings=read_settings(data.get("settings")),
        state=text(data, "state"),
        attendees=read_roster(data.get("attendees")),
        lobby=tuple(read_lobby_entry(entry) for entry in items(data, "lobby")),
        moderator_present=flag(data, "moderatorPresent"),
    )


def read_join_result(value: object) -> JoinResult:
    data = obj(value, "join result")
    return JoinResult(
        attendee_id=text(data, "attendeeId"),
        attendee_type=text(data, "attendeeType"),
        role=choice(data, "role", Role),
        media_state=read_media_state(data.get("mediaState")),
        admitted=flag(data, "admitted"),
        media=read_media_endpoint(data.get("media")),
    )


def read_media_endpoint(value: object) -> MediaEndpoint | None:
    """A join answer's ``media`` (absent or null: no media plane)."""
    if value is None:
        return None
    data = obj(value, "media")
    rtp = obj(data.get("rtp"), "media.rtp")
    host = text(rtp, "ip")
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise PayloadError(f"media.rtp.ip: not an IP address: {host[:64]!r}") from exc
    port = rtp.get("port")
    payload_type = data.get("payloadType")
    codec = text(data, "codec")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise PayloadError("media.rtp.port: expected a port 1-65535")
    if (
        isinstance(payload_type, bool)
        or not isinstance(payload_type, int)
        or not 0 <= payload_type < 128
    ):
        raise PayloadError("media.payloadType: expected 0-127")
    if codec not in CODECS:
        raise PayloadError(f"media.codec: expected one of {', '.join(CODECS)}")
    return MediaEndpoint(host, port, codec, payload_type)


def read_media_state_result(value: object) -> MediaStateResult:
    data = obj(value, "media state result")
    return MediaStateResult(
        attendee_id=text(data, "attendeeId"),
        media_state=read_media_state(data.get("mediaState")),
        held=flag(data, "held"),
    )
