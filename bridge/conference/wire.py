"""The conference API's vocabulary, written once for both ends: the bridge's client and the embedded
server speak the same roles, hands, policies, permissions, event categories and Socket.IO names
(docs/conference-api.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

NAMESPACE: Final = "/chat"
"""The Socket.IO namespace of the realtime channel."""
RESPONSE: Final = "MEDIA_SESSION_RESPONSE"
"""Server to client: one event (``{category, topicId, sender, content, version}``)."""
SUBSCRIBE: Final = "SUBSCRIBE_CHANNEL"
"""Client to server: follow a space's events (``{channel: {type: "topic", _id: spaceId}}``)."""
SEND: Final = "SEND_MEDIA_SESSION_EVENTS"
"""Client to server: report an attendee's media state (a ``tracksstatus`` event)."""

PHONE: Final = "phone"
"""``attendeeType`` of the attendees the bridge joins for SIP phones."""

MODERN_VERSION = (1, 1)
"""Clients reporting this version or higher are modern; absent, lower or unparsable is legacy."""

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
    SETTINGS_UPDATED = "app.event.space.settings.updated"
