"""The conference API's vocabulary, written once for both ends: the bridge's client and the embedded
server speak the same roles, hands, policies, permissions, event categories and Socket.IO names
(docs/conference-api.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

NAMESPACE: Final = "/chat"
"""The Socket.IO namespace of the realtime channel."""
RESPONSE: Final = "MEDIA_SESSION_RESPONSE"
"""Server to client: one event (``{category, topicId, sender, content, version}``)."""
SUBSCRIBE: Final = "SUBSCRIBE_CHANNEL"
"""Client to server: follow a space's events (``{channel: {type: "topic", _id: spaceId}}``)."""
SEND: Final = "SEND_MEDIA_SESSION_EVENTS"
"""Client to server: report an attendee's media state (a ``tracksstatus`` event)."""
SESSION_HEADER: Final = "Spaces-Session"
"""HTTP header naming the client process's session: its joins leave when the session has had no
socket for the server's timeout (docs/conference-api.md, Sessions)."""
SESSION_AUTH: Final = "session"
"""The same session id in the Socket.IO ``auth`` payload, beside ``token``."""

PHONE: Final = "phone"
"""``attendeeType`` of the attendees the bridge joins for SIP phones."""
WEB: Final = "web"
"""``attendeeType`` of a browser's attendee (the console's meeting audio)."""

CODECS: Final = ("PCMU", "PCMA")
"""What a phone attendee's audio may be: G.711 mu-law or A-law at 8 kHz, in 20 ms packets (RFC
3551 §4.5.14), which phones and the meeting's mixer both take without transcoding."""


@dataclass(frozen=True, slots=True)
class MediaOffer:
    """A join's ``media``: where the bridge receives the attendee's meeting audio (plain RTP), and
    the codecs it can send, preferred first (docs/conference-api.md, POST …/attendees)."""

    host: str
    port: int
    codecs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"rtp": {"ip": self.host, "port": self.port}, "codecs": list(self.codecs)}


@dataclass(frozen=True, slots=True)
class MediaEndpoint:
    """A join answer's ``media``: where the bridge sends the attendee's audio, in which codec and
    payload type. Absent when the server has no media plane."""

    host: str
    port: int
    codec: str
    payload_type: int

    def to_json(self) -> dict[str, Any]:
        return {
            "rtp": {"ip": self.host, "port": self.port},
            "codec": self.codec,
            "payloadType": self.payload_type,
        }


MODERN_VERSION = (1, 1)
"""Clients reporting this version or higher are modern; absent, lower or unparsable is legacy."""
_VERSION = re.compile(r"\s*([0-9]{1,6})(?:\.([0-9]{1,6})(?:\.[0-9]{1,6})?)?\s*")


def is_modern(version: str | None) -> bool:
    """The one rule both ends apply, to a phone's ``spacesVersion`` and to a client's ``version``
    (docs/behaviour.md, Legacy and modern endpoints): ``major``, ``major.minor`` or
    ``major.minor.patch`` in ASCII digits, at least 1.1, is modern; absent, lower or anything else
    (``abc``, ``v1.1``, ``1.1-beta``, which comes before 1.1) is legacy."""
    if version is None:
        return False
    match = _VERSION.fullmatch(version)
    if match is None:
        return False
    return (int(match[1]), int(match[2] or 0)) >= MODERN_VERSION


EVENT_VERSION = "1.1"
"""``version`` written in every ``MEDIA_SESSION_RESPONSE``."""

SERVER_SENDER = "server"
"""``sender`` of events that no attendee caused (admin actions, the server's own decisions)."""


class Role(StrEnum):
    """A token's role. Attendees carry one of the first three; ``bridge`` only acts for phones."""

    MODERATOR = "moderator"
    MEMBER = "member"
    GUEST = "guest"
    BRIDGE = "bridge"


class GuestPolicy(StrEnum):
    """What happens to a guest who joins a space."""

    ALWAYS_ACCEPT = "ALWAYS_ACCEPT"
    ALWAYS_DENY = "ALWAYS_DENY"
    ASK_MODERATOR = "ASK_MODERATOR"


class Hand(StrEnum):
    """An attendee's hand: raised asks for PERMISSION_UNMUTE, accepted grants it."""

    LOWERED = "lowered"
    RAISED = "raised"
    ACCEPTED = "accepted"


class MeetingState(StrEnum):
    """Whether a meeting still takes actions."""

    ACTIVE = "active"
    ENDED = "ended"


class Permission(StrEnum):
    """``kind`` of permission events."""

    UNMUTE = "PERMISSION_UNMUTE"
    MEETING_JOIN = "MEETING_JOIN"


class PermissionState(StrEnum):
    """``state`` of ``app.event.meeting.permission.updated``."""

    GRANTED = "GRANTED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"


class Category(StrEnum):
    """The closed set of ``MEDIA_SESSION_RESPONSE`` categories the server emits."""

    TRACKSSTATUS = "tracksstatus"
    REQUEST_TRACKSSTATUS = "request.tracksstatus.change"
    ALL_MUTING = "app.event.all.parties.muting"
    ALL_MUTED = "app.event.all.parties.muted"
    PERMISSION_REQUESTED = "app.event.meeting.permission.requested"
    PERMISSION_UPDATED = "app.event.meeting.permission.updated"
    MEETING_ENDED = "app.event.meeting.ended"
    ATTENDEE_JOINED = "app.event.attendee.joined"
    ATTENDEE_UPDATED = "app.event.attendee.updated"
    ATTENDEE_LEFT = "app.event.attendee.left"
    ATTENDEE_MEDIA = "app.event.attendee.media"
    """The media plane gave a phone attendee a (new) endpoint: ``{attendeeId, media}``."""
    ATTENDEE_TALKING = "app.event.attendee.talking"
    """An attendee started or stopped talking: ``{attendeeId, talking}`` (shown, not a state)."""
    SETTINGS_UPDATED = "app.event.space.settings.updated"
