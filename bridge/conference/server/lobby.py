"""The lobby of the conference rules (docs/behaviour.md, Lobby): a waiting attendee's request to
join, announced to moderators, and their decision: admitted with the space's entry rules, or turned
away; remembered as the space's guest policy when the moderator asks.
"""

from __future__ import annotations

import dataclasses

from ..wire import SERVER_SENDER, Category, GuestPolicy, Permission, PermissionState, Role
from . import rules
from .errors import Conflict, Forbidden
from .model import Attendee, Caller, Event, Meeting, Outcome
from .rules import Space
from .spaces import Spaces


class LobbyActions(Spaces):
    """The lobby's actions, as actions of :class:`~.state.Conference`."""

    def request_admission(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        attendee_id: str,
        attendee_type: str | None,
    ) -> Outcome:
        """``POST …/meetingpermissions`` by the owner of a waiting attendee: queued, and announced now
        if a moderator is present (else when one joins). Asking twice keeps the first place."""
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        a = rules.target(meeting, attendee_id, attendee_type)
        if a.owner != caller.token_name:
            raise Forbidden(f"only attendee {a.id}'s own client may ask to join", "not_owner")
        if a.admitted:
            raise Conflict(f"attendee {a.id} is already admitted", "already_admitted")
        events: list[Event] = []
        if a.id not in meeting.lobby:
            meeting.lobby[a.id] = self._now()
            if meeting.moderator_present():
                events.append(rules.requested(space, a, Permission.MEETING_JOIN))
        return Outcome(tuple(events), {"attendeeId": a.id, "state": "REQUESTED"})

    def allow(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        attendee_id: str,
        *,
        remember: bool = False,
    ) -> Outcome:
        """``…/meetingpermissions/allow`` (moderator). ``remember`` makes the policy ALWAYS_ACCEPT and
        admits every other waiting attendee too."""
        return self._settle(
            caller, space_id, meeting_id, attendee_id, allow=True, remember=remember
        )

    def deny(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        attendee_id: str,
        *,
        remember: bool = False,
    ) -> Outcome:
        """``…/meetingpermissions/deny`` (moderator): the attendee is removed. ``remember`` makes the
        policy ALWAYS_DENY and turns every other waiting attendee away too."""
        return self._settle(
            caller, space_id, meeting_id, attendee_id, allow=False, remember=remember
        )

    def _settle(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        attendee_id: str,
        *,
        allow: bool,
        remember: bool,
    ) -> Outcome:
        rules.require_moderator(caller, "admit or refuse guests")
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        a = rules.target(meeting, attendee_id, None)
        if a.admitted:
            raise Conflict(f"attendee {a.id} is not in the lobby", "not_in_lobby")
        waiting = [a]
        events: list[Event] = []
        if remember:
            policy = GuestPolicy.ALWAYS_ACCEPT if allow else GuestPolicy.ALWAYS_DENY
            space.settings = dataclasses.replace(space.settings, guest_policy=policy)
            events.append(
                Event(Category.SETTINGS_UPDATED, space.id, {"settings": space.settings.to_json()})
            )
            waiting += [w for w in meeting.attendees.values() if not w.admitted and w is not a]
        for w in waiting:
            events += (
                self._admit(space, meeting, w) if allow else self._turn_away(space, meeting, w)
            )
        state = "GRANTED" if allow else "REJECTED"
        return Outcome(tuple(events), {"attendeeId": a.id, "state": state})

    def _admit(self, space: Space, meeting: Meeting, a: Attendee) -> list[Event]:
        meeting.lobby.pop(a.id, None)
        a.admitted = True
        events = [
            rules.permission(
                space, a, Permission.MEETING_JOIN, PermissionState.GRANTED, SERVER_SENDER
            )
        ]
        muted_on_entry = rules.mutes_on_entry(space, a)
        a.audio = not muted_on_entry
        if a.audio:
            events.append(Event(Category.TRACKSSTATUS, space.id, a.tracks(), a.id))
        events.append(Event(Category.ATTENDEE_UPDATED, space.id, a.to_json()))
        if muted_on_entry:
            events.append(Event(Category.REQUEST_TRACKSSTATUS, space.id, a.tracks()))
        if a.role is Role.MODERATOR:
            events += rules.announce_lobby(space, meeting)
        return events

    def _turn_away(self, space: Space, meeting: Meeting, a: Attendee) -> list[Event]:
        meeting.lobby.pop(a.id, None)
        del meeting.attendees[a.id]
        return [
            rules.permission(
                space, a, Permission.MEETING_JOIN, PermissionState.REJECTED, SERVER_SENDER
            ),
            Event(Category.ATTENDEE_LEFT, space.id, a.to_json()),
        ]
