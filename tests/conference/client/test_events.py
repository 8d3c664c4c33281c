"""parse_event: every category of the contract, malformed payloads, and arbitrary JSON never raising."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.conference.client.events import (
    CATEGORIES,
    AttendeeJoined,
    AttendeeLeft,
    AttendeeMedia,
    AttendeeUpdated,
    MeetingEnded,
    MuteAllDone,
    MuteAllStarted,
    PermissionRequested,
    PermissionUpdated,
    SettingsUpdated,
    TracksStatus,
    TracksStatusChangeRequest,
    parse_event,
)
from bridge.conference.client.models import (
    GuestPolicy,
    Hand,
    MediaState,
    Role,
    RosterEntry,
    Settings,
)
from bridge.conference.wire import MediaEndpoint

ENTRY = {
    "attendeeId": "a1",
    "attendeeType": "phone",
    "displayName": "Desk 12",
    "role": "member",
    "version": None,
    "mediaState": {"audio": True, "video": False},
    "hand": "raised",
    "held": False,
    "guest": False,
    "admitted": True,
    "joinedAt": "2024-05-01T10:00:00.000Z",
}
TYPED_ENTRY = RosterEntry(
    attendee_id="a1",
    attendee_type="phone",
    display_name="Desk 12",
    role=Role.MEMBER,
    version=None,
    media_state=MediaState(audio=True, video=False),
    hand=Hand.RAISED,
    held=False,
    guest=False,
    admitted=True,
    joined_at="2024-05-01T10:00:00.000Z",
)
SETTINGS = {
    "preventUnmuting": True,
    "muteOnEntry": False,
    "guestPolicy": "ASK_MODERATOR",
    "autoStart": True,
}

# (category, content, expected event), one row per category of the contract.
CASES: list[tuple[str, dict[str, Any], object]] = [
    (
        "tracksstatus",
        {"attendeeId": "a1", "audio": False, "video": True},
        TracksStatus("s", "a1", audio=False, video=True),
    ),
    (
        "request.tracksstatus.change",
        {"attendeeId": "a1", "audio": False, "video": False},
        TracksStatusChangeRequest("s", "a1", audio=False, video=False),
    ),
    ("app.event.all.parties.muting", {"initiator": "m1"}, MuteAllStarted("s", "m1")),
    (
        "app.event.all.parties.muted",
        {"exclude": [{"attendeeId": "m1"}, {"attendeeId": "a2"}]},
        MuteAllDone("s", ("m1", "a2")),
    ),
    (
        "app.event.meeting.permission.requested",
        {"targetId": "a1", "kind": "PERMISSION_UNMUTE"},
        PermissionRequested("s", "a1", "PERMISSION_UNMUTE"),
    ),
    (
        "app.event.meeting.permission.updated",
        {"targetId": "a1", "kind": "MEETING_JOIN", "state": "GRANTED"},
        PermissionUpdated("s", "a1", "MEETING_JOIN", "GRANTED"),
    ),
    ("app.event.meeting.ended", {"meetingId": "m"}, MeetingEnded("s", "m")),
    ("app.event.attendee.joined", ENTRY, AttendeeJoined("s", TYPED_ENTRY)),
    ("app.event.attendee.updated", ENTRY, AttendeeUpdated("s", TYPED_ENTRY)),
    ("app.event.attendee.left", ENTRY, AttendeeLeft("s", TYPED_ENTRY)),
    (
        "app.event.attendee.media",
        {"attendeeId": "a1", "media": MediaEndpoint("127.0.0.1", 40002, "PCMU", 0).to_json()},
        AttendeeMedia("s", "a1", MediaEndpoint("127.0.0.1", 40002, "PCMU", 0)),
    ),
    (
        "app.event.space.settings.updated",
        {"settings": SETTINGS},
        SettingsUpdated("s", Settings(True, False, GuestPolicy.ASK_MODERATOR, True)),
    ),
]


def envelope(category: str, content: object) -> dict[str, object]:
    return {
        "category": category,
        "topicId": "s",
        "sender": "server",
        "content": content,
        "version": "1.1",
    }


def test_every_category_has_a_case() -> None:
    assert {category for category, _, _ in CASES} == set(CATEGORIES)


@pytest.mark.parametrize(("category", "content", "expected"), CASES, ids=[c[0] for c in CASES])
def test_parse_each_category(category: str, content: dict[str, Any], expected: object) -> None:
    malformed: list[str] = []
    assert parse_event(envelope(category, content), on_malformed=malformed.append) == expected
    assert malformed == []


def test_events_are_frozen_values() -> None:
    event = TracksStatus("s", "a1", audio=True, video=False)
    with pytest.raises(AttributeError):
        event.audio = False  # type: ignore[misc]
    assert event == TracksStatus("s", "a1", audio=True, video=False)
    assert not hasattr(event, "__dict__")  # slots


def test_extra_keys_are_ignored() -> None:
    content = {"attendeeId": "a1", "audio": True, "video": False, "future": [1, 2]}
    payload = envelope("tracksstatus", content) | {"extra": {"x": 1}}
    assert parse_event(payload) == TracksStatus("s", "a1", audio=True, video=False)


def test_mute_all_without_initiator() -> None:
    # A moderator's console token has no attendee: the server sends initiator null.
    assert parse_event(envelope("app.event.all.parties.muting", {"initiator": None})) == (
        MuteAllStarted("s", None)
    )


def test_unknown_category_is_ignored_not_counted() -> None:
    malformed: list[str] = []
    payload = envelope("app.event.chat.message", {"text": "hi"})
    assert parse_event(payload, on_malformed=malformed.append) is None
    assert malformed == []


def _broken(category: str, path: tuple[str, ...], value: object) -> dict[str, Any]:
    """A valid payload of ``category`` with the key at ``path`` replaced by ``value`` (or removed
    when ``value`` is ``...``)."""
    content = next(copy.deepcopy(c) for cat, c, _ in CASES if cat == category)
    payload: dict[str, Any] = envelope(category, content)
    target = payload
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


MALFORMED: list[object] = [
    None,
    "tracksstatus",
    [envelope("tracksstatus", {})],
    {},
    {"category": 7, "topicId": "s", "content": {}},
    _broken("tracksstatus", ("topicId",), ...),
    _broken("tracksstatus", ("topicId",), 12),
    _broken("tracksstatus", ("content",), ...),
    _broken("tracksstatus", ("content",), "audio=0"),
    _broken("tracksstatus", ("content", "audio"), 0),
    _broken("tracksstatus", ("content", "audio"), "false"),
    _broken("tracksstatus", ("content", "attendeeId"), ...),
    _broken("request.tracksstatus.change", ("content", "video"), None),
    _broken("app.event.all.parties.muting", ("content", "initiator"), 5),
    _broken("app.event.all.parties.muted", ("content", "exclude"), "m1"),
    _broken("app.event.all.parties.muted", ("content", "exclude"), ["m1"]),
    _broken("app.event.all.parties.muted", ("content", "exclude"), [{"attendeeId": 1}]),
    _broken("app.event.meeting.permission.requested", ("content", "kind"), ...),
    _broken("app.event.meeting.permission.updated", ("content", "state"), ["GRANTED"]),
    _broken("app.event.meeting.ended", ("content", "meetingId"), ...),
    _broken("app.event.attendee.joined", ("content", "role"), "emperor"),
    _broken("app.event.attendee.joined", ("content", "hand"), "waving"),
    _broken("app.event.attendee.updated", ("content", "mediaState"), {"audio": True}),
    _broken("app.event.attendee.updated", ("content", "version"), 1.1),
    _broken("app.event.attendee.left", ("content", "admitted"), ...),
    _broken("app.event.attendee.media", ("content", "media"), ...),
    _broken("app.event.attendee.media", ("content", "media", "rtp", "port"), 0),
    _broken("app.event.space.settings.updated", ("content", "settings"), ...),
    _broken("app.event.space.settings.updated", ("content", "settings", "guestPolicy"), "MAYBE"),
]


@pytest.mark.parametrize("payload", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_is_dropped_and_reported(payload: object) -> None:
    malformed: list[str] = []
    assert parse_event(payload, on_malformed=malformed.append) is None
    assert len(malformed) == 1 and malformed[0]


def test_malformed_without_observer_is_still_none() -> None:
    assert parse_event(_broken("tracksstatus", ("content", "audio"), 1)) is None


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(sorted(CATEGORIES)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "category",
                    "topicId",
                    "content",
                    "attendeeId",
                    "audio",
                    "video",
                    "exclude",
                    "settings",
                    "mediaState",
                    "role",
                    "hand",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_never_raises(payload: object) -> None:
    parse_event(payload, on_malformed=lambda _reason: None)


@settings(max_examples=300)
@given(
    category=st.sampled_from(sorted(CATEGORIES)),
    content=st.dictionaries(st.text(max_size=12), json_values, max_size=8),
)
def test_arbitrary_content_of_known_categories_never_raises(
    category: str, content: dict[str, object]
) -> None:
    reasons: list[str] = []
    event = parse_event(envelope(category, content), on_malformed=reasons.append)
    # Exactly one outcome: a typed event or one reported reason.
    assert (event is None) == (len(reasons) == 1)
