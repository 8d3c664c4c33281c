"""The conference rules (docs/conference-api.md; the lobby of docs/behaviour.md), as a pure object.

``Conference`` holds spaces, meetings, attendees, the lobby queue and hands. Each action takes the
``Caller`` (name and role of the bearer token), checks role and ownership, changes the state and
returns an ``Outcome``: the events to emit, in order, and the answer's body; or raises an ``ApiError``
(``bridge.conference.server.errors``). Nothing here does I/O, reads a clock or draws random numbers:
ids and the clock are injected, so tests step through any interleaving by hand
(docs/architecture.md).

The invariant every action keeps (and ``tests/conference/server/test_state.py`` checks after random
sequences):
while a space prevents unmuting, every unmuted attendee is a moderator or has an accepted hand.

Event order, the same for every action: the action's own event first (``muting``, permission
events…), then the state changes it caused (``tracksstatus`` and ``app.event.attendee.*``), then the
commands to endpoints (``request.tracksstatus.change``), so that a client has seen the new state when it
is told to follow it.

The actions are grouped by subject: this module holds the queries, the meetings and the attendees'
own actions; :mod:`.floor` mute all and the hands; :mod:`.lobby` the lobby; :mod:`.spaces` the state
they share and the lookups each starts with.
"""

from __future__ import annotations

import dataclasses

from ..wire import (
    Category,
    GuestPolicy,
    Hand,
    MediaOffer,
    MeetingState,
    Permission,
    PermissionState,
    Role,
    is_modern,
)
from . import rules
from .errors import (
    Conflict,
    Forbidden,
    GuestDenied,
    NotFound,
    PreventUnmuting,
)
from .floor import FloorActions
from .lobby import LobbyActions
from .model import (
    JSON,
    Attendee,
    Caller,
    Event,
    Meeting,
    Outcome,
    Settings,
    iso,
)
from .rules import Space

ENDED_KEPT = 16
"""Ended meetings kept per space so that late callers read ``state: ended`` instead of 404."""


class Conference(FloorActions, LobbyActions):
    """Spaces, meetings and attendees, and every action of the API contract on them."""

    # ----------------------------------------------------------------- queries

    def has_space(self, space_id: str) -> bool:
        """Whether ``space_id`` is hosted (Socket.IO subscriptions check it)."""
        return space_id in self._spaces

    def spaces(self) -> list[JSON]:
        """Every hosted space: id, name, settings and active meeting (for consoles; any token)."""
        return [
            {
                "spaceId": s.id,
                "name": s.name,
                "settings": s.settings.to_json(),
                "activeMeetingId": s.active,
            }
            for s in self._spaces.values()
        ]

    def settings(self, space_id: str) -> Settings:
        """A space's current settings."""
        return self._space(space_id).settings

    def meeting(self, caller: Caller, space_id: str, meeting_id: str) -> JSON:
        """``GET …/meetings/:meetingId``: the meeting, its roster and lobby; ended meetings too."""
        del caller  # every valid token may read
        space = self._space(space_id)
        meeting = self._meeting(space, meeting_id)
        lobby = []
        for attendee_id, requested_at in meeting.lobby.items():
            a = meeting.attendees[attendee_id]
            entry = {"attendeeId": a.id, "attendeeType": a.type, "displayName": a.display_name}
            lobby.append({**entry, "requestedAt": iso(requested_at)})
        return {
            "meetingId": meeting.id,
            "spaceId": space.id,
            "settings": space.settings.to_json(),
            "state": str(meeting.state),
            "attendees": [a.to_json() for a in meeting.attendees.values()],
            "lobby": lobby,
            "moderatorPresent": meeting.moderator_present(),
        }

    def roster(self, caller: Caller, space_id: str, meeting_id: str) -> list[JSON]:
        """``GET …/attendees``: every attendee, waiting ones included (``admitted: false``)."""
        del caller
        meeting = self._meeting(self._space(space_id), meeting_id)
        return [a.to_json() for a in meeting.attendees.values()]

    def space_ids(self) -> list[str]:
        return list(self._spaces)

    def active_meeting_id(self, space_id: str) -> str | None:
        """The space's active meeting, if any (None for an unknown space too)."""
        space = self._spaces.get(space_id)
        return space.active if space is not None else None

    def attendee(self, space_id: str, attendee_id: str) -> Attendee | None:
        """An attendee of the space's active meeting (callers must not change it)."""
        meeting_id = self.active_meeting_id(space_id)
        if meeting_id is None:
            return None
        return self._spaces[space_id].meetings[meeting_id].attendees.get(attendee_id)

    def space_of(self, meeting_id: str) -> str | None:
        """The space a meeting belongs to, if the server still knows it."""
        return next((s.id for s in self._spaces.values() if meeting_id in s.meetings), None)

    def attendees(self, space_id: str) -> list[Attendee]:
        """The active meeting's attendees (for tests and metrics; callers must not change them)."""
        space = self._space(space_id)
        if space.active is None:
            return []
        return list(space.meetings[space.active].attendees.values())

    # -------------------------------------------------------------- meetings

    def active_meeting(self, caller: Caller, space_id: str) -> Outcome:
        """``GET …/activemeeting``: the active meeting, started now if the space auto-starts."""
        del caller
        space = self._space(space_id)
        if space.active is None:
            if not space.settings.auto_start:
                raise NotFound(f"space {space_id} has no active meeting", "no_active_meeting")
            self._start(space)
        return Outcome(body=self._meeting_summary(space))

    def start_meeting(self, caller: Caller, space_id: str) -> Outcome:
        """``POST …/meetings`` (an addition): a moderator starts a meeting in any space."""
        rules.require_moderator(caller, "start a meeting")
        space = self._space(space_id)
        if space.active is not None:
            raise Conflict(f"space {space_id} already has an active meeting", "meeting_active")
        self._start(space)
        return Outcome(body=self._meeting_summary(space))

    def end_meeting(self, caller: Caller, space_id: str, meeting_id: str) -> Outcome:
        """``DELETE …/meetings/:meetingId``: everybody is removed; later actions get 409."""
        rules.require_moderator(caller, "end the meeting")
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        meeting.state = MeetingState.ENDED
        meeting.attendees.clear()
        meeting.lobby.clear()
        space.active = None
        return Outcome((Event(Category.MEETING_ENDED, space.id, {"meetingId": meeting.id}),))

    def update_settings(
        self,
        caller: Caller,
        space_id: str,
        *,
        prevent_unmuting: bool | None = None,
        mute_on_entry: bool | None = None,
        guest_policy: GuestPolicy | None = None,
    ) -> Outcome:
        """``PATCH …/settings``. Turning "prevent unmuting" on mutes who may no longer be unmuted."""
        rules.require_moderator(caller, "change the space settings")
        space = self._space(space_id)
        before = space.settings
        space.settings = dataclasses.replace(
            before,
            prevent_unmuting=before.prevent_unmuting
            if prevent_unmuting is None
            else prevent_unmuting,
            mute_on_entry=before.mute_on_entry if mute_on_entry is None else mute_on_entry,
            guest_policy=before.guest_policy if guest_policy is None else guest_policy,
        )
        settings_json = space.settings.to_json()
        events = [Event(Category.SETTINGS_UPDATED, space.id, {"settings": settings_json})]
        if space.settings.prevent_unmuting and not before.prevent_unmuting and space.active:
            for a in space.meetings[space.active].attendees.values():
                if a.audio and not rules.may_unmute(space, a):
                    events += rules.force_mute(space, a)
        return Outcome(tuple(events), settings_json)

    # ------------------------------------------------------------- attendees

    def join(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        *,
        attendee_type: str,
        display_name: str,
        version: str | None = None,
        guest: bool = False,
        role: Role | None = None,
        endpoint: str | None = None,
        media: MediaOffer | None = None,
    ) -> Outcome:
        """``POST …/attendees``: role from the token (a bridge chooses for its phones), guest policy,
        mute on entry, and the lobby queue re-announced when a moderator arrives. ``media`` (where
        the bridge takes the attendee's audio) is kept for the media plane (``media.MediaSync``),
        which adds the endpoint to the answer; without one the answer names none."""
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        attendee_role = rules.attendee_role(caller, guest=guest, requested=role)
        is_guest = guest or attendee_role is Role.GUEST
        policy = space.settings.guest_policy
        if is_guest and policy is GuestPolicy.ALWAYS_DENY:
            raise GuestDenied(space.id)
        if len(meeting.attendees) >= self._capacity:
            raise Conflict(f"meeting {meeting.id} is full ({self._capacity})", "meeting_full")
        a = Attendee(
            id=self._ids(),
            type=attendee_type,
            display_name=display_name,
            role=attendee_role,
            owner=caller.token_name,
            version=version,
            guest=is_guest,
            admitted=not is_guest or policy is GuestPolicy.ALWAYS_ACCEPT,
            joined_at=self._now(),
            endpoint=endpoint,
            media_offer=media,
        )
        meeting.attendees[a.id] = a
        # Waiting attendees are muted: no media flows in the lobby (docs/behaviour.md, Lobby);
        # entry rules apply on admission.
        muted_on_entry = a.admitted and rules.mutes_on_entry(space, a)
        a.audio = a.admitted and not muted_on_entry
        events = [Event(Category.ATTENDEE_JOINED, space.id, a.to_json(), a.id)]
        if muted_on_entry:
            events.append(Event(Category.REQUEST_TRACKSSTATUS, space.id, a.tracks()))
        if a.admitted and a.role is Role.MODERATOR:
            events += rules.announce_lobby(space, meeting)
        body = {
            "attendeeId": a.id,
            "attendeeType": a.type,
            "role": str(a.role),
            "mediaState": a.media_state(),
            "admitted": a.admitted,
        }
        return Outcome(tuple(events), body)

    def leave(
        self, caller: Caller, space_id: str, meeting_id: str, attendee_type: str, attendee_id: str
    ) -> Outcome:
        """``DELETE …/attendees/:type/:id`` by its owner or a moderator; a lobby request is withdrawn."""
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        a = rules.target(meeting, attendee_id, attendee_type)
        rules.self_or_admin(caller, a, "remove")
        events = []
        if meeting.lobby.pop(a.id, None) is not None:
            events.append(
                rules.permission(space, a, Permission.MEETING_JOIN, PermissionState.WITHDRAWN, a.id)
            )
        del meeting.attendees[a.id]
        events.append(Event(Category.ATTENDEE_LEFT, space.id, a.to_json(), a.id))
        return Outcome(tuple(events))

    def set_media(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        attendee_type: str,
        attendee_id: str,
        *,
        audio: bool | None = None,
        video: bool | None = None,
        held: bool | None = None,
        media_session: str | None = None,
    ) -> Outcome:
        """``POST …/mediastate``: self (the owner) or admin (a moderator) change; an unmute is refused
        under "prevent unmuting" without a moderator role or an accepted hand."""
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        a = rules.target(meeting, attendee_id, attendee_type)
        admin = rules.self_or_admin(caller, a, "change the media state of")
        if not a.admitted:
            raise Conflict(f"attendee {a.id} is waiting in the lobby", "not_admitted")
        if audio and not rules.may_unmute(space, a):
            raise PreventUnmuting(a.id)
        if media_session is not None:
            a.media_session = media_session
        events = rules.apply_media(space, a, audio, video, held, admin=admin)
        return Outcome(
            tuple(events), {"attendeeId": a.id, "mediaState": a.media_state(), "held": a.held}
        )

    def report_talking(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        attendee_type: str,
        attendee_id: str,
        *,
        talking: bool,
    ) -> Outcome:
        """``POST …/talking``: the attendee's owner (the bridge, which hears a phone's level) says
        it started or stopped talking. Shown to consoles only, never a state: the media plane
        publishes it only while the attendee is audible."""
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        a = rules.target(meeting, attendee_id, attendee_type)
        rules.self_or_admin(caller, a, "report the talking of")
        content = {"attendeeId": a.id, "talking": talking and a.audio and not a.held}
        return Outcome((Event(Category.ATTENDEE_TALKING, space.id, content, a.id),), content)

    def report_tracks(
        self,
        caller: Caller,
        space_id: str,
        attendee_id: str,
        *,
        audio: bool | None,
        video: bool | None,
        version: str | None,
    ) -> Outcome:
        """A ``tracksstatus`` report over Socket.IO (``SEND_MEDIA_SESSION_EVENTS``), from the owner.

        Allowed: applied like a self media-state change. Refused: nothing changes and the server answers
        ``request.tracksstatus.change`` with its own state; a LEGACY client (no version, or below 1.1)
        that tried to unmute under "prevent unmuting" also gets its hand raised on its behalf.
        """
        space = self._space(space_id)
        if space.active is None:
            raise Conflict(f"space {space_id} has no active meeting", "no_active_meeting")
        meeting = space.meetings[space.active]
        a = rules.target(meeting, attendee_id, None)
        if a.owner != caller.token_name:
            raise Forbidden(f"attendee {a.id} belongs to another token", "not_owner")
        if a.admitted and not (audio and not rules.may_unmute(space, a)):
            events = rules.apply_media(space, a, audio, video, None, admin=False)
            return Outcome(tuple(events), {"attendeeId": a.id, "applied": True})
        events = [Event(Category.REQUEST_TRACKSSTATUS, space.id, a.tracks())]
        legacy = not is_modern(version)
        if legacy and a.admitted and audio and a.hand is Hand.LOWERED:
            events += rules.raise_hand(space, a)
        return Outcome(tuple(events), {"attendeeId": a.id, "applied": False})

    # ---------------------------------------------------------------- helpers

    def _start(self, space: Space) -> Meeting:
        meeting = Meeting(self._ids(), space.id, self._now())
        space.meetings[meeting.id] = meeting
        space.active = meeting.id
        ended = [m.id for m in space.meetings.values() if m.state is MeetingState.ENDED]
        for old in ended[: max(0, len(ended) - ENDED_KEPT)]:
            del space.meetings[old]
        return meeting

    def _meeting_summary(self, space: Space) -> JSON:
        return {
            "meetingId": space.active,
            "spaceId": space.id,
            "settings": space.settings.to_json(),
        }
