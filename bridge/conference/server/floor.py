"""Who may speak, the conference rules' floor control (docs/conference-api.md): muting everyone at
once, and raised hands, whose acceptance is the permission to unmute while a space prevents
unmuting. Lowering an accepted hand takes that permission back, so these actions keep the invariant
of :mod:`.state` too.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..wire import SERVER_SENDER, Category, Hand, Permission, PermissionState, Role
from . import rules
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .model import Caller, Event, Outcome
from .spaces import Spaces


class FloorActions(Spaces):
    """Mute all and the hands, as actions of :class:`~.state.Conference`."""

    # --------------------------------------------------------------- mute all

    def mute_all(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        *,
        exclusions: Iterable[str] = (),
        initiator: str | None = None,
    ) -> Outcome:
        """``POST …/muteall``: mute everyone but the initiator and the exclusion list.

        A moderator token's own attendees count as initiators (the caller is always excluded); a bridge
        must name one of its own moderator attendees. Unknown ids in the exclusion list are ignored:
        phones leave while a moderator picks whom to spare.
        """
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        if caller.role is Role.MODERATOR:
            if initiator is not None:
                initiators = [rules.target(meeting, initiator, None).id]
            else:
                initiators = [
                    a.id for a in meeting.attendees.values() if a.owner == caller.token_name
                ]
        elif caller.role is Role.BRIDGE and initiator is not None:
            a = rules.target(meeting, initiator, None)
            if a.owner != caller.token_name or a.role is not Role.MODERATOR:
                raise Forbidden("a bridge mutes all only for one of its own moderator attendees")
            initiators = [a.id]
        else:
            raise Forbidden(f"a {caller.role} token may not mute all")
        spared = list(initiators)
        spared += [i for i in exclusions if i in meeting.attendees and i not in spared]
        first = initiators[0] if initiators else None
        sender = first or SERVER_SENDER
        events = [Event(Category.ALL_MUTING, space.id, {"initiator": first}, sender)]
        muted = [a for a in meeting.attendees.values() if a.id not in spared]
        for a in muted:
            # An accepted hand is a permission to unmute; mute all takes it back with the audio.
            events += rules.apply_media(space, a, False, None, None, admin=False, clear_hand=True)
        exclude = [{"attendeeId": i} for i in spared]
        events.append(Event(Category.ALL_MUTED, space.id, {"exclude": exclude}, sender))
        events += [
            Event(Category.REQUEST_TRACKSSTATUS, space.id, a.tracks()) for a in muted if a.legacy
        ]
        return Outcome(tuple(events), {"muted": [a.id for a in muted]})

    # ------------------------------------------------------------------ hands

    def raise_hand(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        *,
        attendee_id: str | None = None,
        attendee_type: str | None = None,
    ) -> Outcome:
        """``POST …/raisedhands`` for the caller's own attendee (named, or its only one in the
        meeting). Idempotent: a raised or accepted hand stays as it is, without events."""
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        if attendee_id is None:
            own = [a for a in meeting.attendees.values() if a.owner == caller.token_name]
            if not own:
                raise NotFound(f"{caller.token_name} has no attendee in meeting {meeting.id}")
            if len(own) > 1:
                raise BadRequest("attendeeId is required: the token has several attendees here")
            a = own[0]
        else:
            a = rules.target(meeting, attendee_id, attendee_type)
        if a.owner != caller.token_name:
            raise Forbidden(f"only attendee {a.id}'s own client may raise its hand", "not_owner")
        if not a.admitted:
            raise Conflict(f"attendee {a.id} is waiting in the lobby", "not_admitted")
        events = rules.raise_hand(space, a) if a.hand is Hand.LOWERED else []
        return Outcome(tuple(events), {"attendeeId": a.id, "hand": str(a.hand)})

    def accept_hand(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        attendee_id: str,
        attendee_type: str | None,
    ) -> Outcome:
        """``…/raisedhands/accept`` (moderator): the hand becomes ``accepted``; the media state does not
        change (the attendee unmutes itself, which is now allowed)."""
        rules.require_moderator(caller, "accept a raised hand")
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        a = rules.target(meeting, attendee_id, attendee_type)
        if a.hand is not Hand.RAISED:
            raise Conflict(f"attendee {a.id}'s hand is {a.hand}, not raised", "hand_not_raised")
        a.hand = Hand.ACCEPTED
        events = [
            rules.permission(space, a, Permission.UNMUTE, PermissionState.GRANTED, SERVER_SENDER),
            Event(Category.ATTENDEE_UPDATED, space.id, a.to_json()),
        ]
        return Outcome(tuple(events), {"attendeeId": a.id, "hand": str(a.hand)})

    def lower_hand(
        self,
        caller: Caller,
        space_id: str,
        meeting_id: str,
        attendee_id: str,
        attendee_type: str | None,
    ) -> Outcome:
        """``…/raisedhands/lower``: ``REJECTED`` by a moderator, ``WITHDRAWN`` by the owner.

        Lowering an accepted hand takes the permission back: under "prevent unmuting" an unmuted
        attendee is muted with it (the invariant of :mod:`.state`)."""
        space = self._space(space_id)
        meeting = self._active(space, meeting_id)
        a = rules.target(meeting, attendee_id, attendee_type)
        admin = rules.self_or_admin(caller, a, "lower the hand of")
        if a.hand is Hand.LOWERED:
            return Outcome((), {"attendeeId": a.id, "hand": str(a.hand)})
        a.hand = Hand.LOWERED
        state = PermissionState.REJECTED if admin else PermissionState.WITHDRAWN
        events = [
            rules.permission(space, a, Permission.UNMUTE, state, SERVER_SENDER if admin else a.id)
        ]
        if a.audio and not rules.may_unmute(space, a):
            events += rules.force_mute(space, a)
        else:
            events.append(Event(Category.ATTENDEE_UPDATED, space.id, a.to_json()))
        return Outcome(tuple(events), {"attendeeId": a.id, "hand": str(a.hand)})
