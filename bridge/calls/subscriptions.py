"""The ``conference`` event package (RFC 4575 over RFC 6665): phones that SUBSCRIBE to a space get
NOTIFYs with the meeting's roster and each user's audio status, refreshed on every change
(docs/behaviour.md, Server to phone).

The roster of each subscribed space is kept from the server's events (joined, updated, left,
tracksstatus) and re-read after every (re)connection. A NOTIFY is outstanding at most once per
subscription; changes meanwhile coalesce into the next one, which carries the full state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from ..conference.client import events as ev
from ..conference.client.client import SpacesClient
from ..conference.client.errors import NotFound, SpacesError
from ..conference.client.models import RosterEntry
from ..sip import DialogId, Endpoint, LocalProtocolError, Request, SipUri, conference_info
from .protocols import Cancellable
from .settings import CallSettings
from .version import classify

log = structlog.get_logger("bridge.calls")

DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
ALLOW_EVENTS = (("Allow-Events", conference_info.EVENT),)


@dataclass(slots=True)
class Subscription:
    dialog: DialogId
    space_id: str
    entity: str
    expires_at: float
    version: int = 0
    pending: int | None = None
    """The NOTIFY in flight."""
    dirty: bool = False
    timer: Cancellable | None = None
    sent: frozenset[conference_info.User] | None = None
    """The roster of the last NOTIFY: an event that changes nothing a phone sees sends nothing."""


@dataclass(slots=True)
class Roster:
    meeting_id: str
    members: dict[str, conference_info.User] = field(default_factory=dict)
    """By attendee id."""

    def apply(self, entry: RosterEntry) -> None:
        if entry.admitted:
            self.members[entry.attendee_id] = _user(
                entry.attendee_id, entry.display_name, entry.media_state.audio
            )
        else:
            self.members.pop(entry.attendee_id, None)


class Subscriptions:
    def __init__(
        self,
        endpoint: Endpoint,
        client: SpacesClient,
        settings: CallSettings,
        *,
        subscribe: Callable[[str], Awaitable[None]],
        clock: Callable[[], float],
        flush: Callable[[], None],
        spawn: Callable[[Awaitable[object]], None],
        later: Callable[[float, Callable[[], None]], Cancellable],
    ) -> None:
        self._endpoint = endpoint
        self._client = client
        self.settings = settings
        self._subscribe = subscribe
        self._clock = clock
        self._flush = flush
        self._spawn = spawn
        self._later = later
        self._subs: dict[DialogId, Subscription] = {}
        self._rosters: dict[str, Roster] = {}

    @property
    def count(self) -> int:
        return len(self._subs)

    # -- SUBSCRIBE -----------------------------------------------------------------------------------
    def on_subscribe(self, rid: int, request: Request, dialog: DialogId | None) -> None:
        now = self._clock()
        event = (request.headers.get("event") or "").partition(";")[0].strip().lower()
        generation = classify(request.headers.get(self.settings.version_header))
        methods = self.settings.methods(generation, request.headers.get("user-agent"))
        if event != conference_info.EVENT or "conference" not in methods:
            self._endpoint.respond(rid, 489, "Bad Event", now=now, headers=ALLOW_EVENTS)
            return
        expires = _expires(request.headers.get("expires"))
        if expires is None:
            self._endpoint.respond(rid, 400, "Bad Expires", now=now)
            return
        if 0 < expires < MIN_EXPIRES:
            headers = (("Min-Expires", str(MIN_EXPIRES)),)
            self._endpoint.respond(rid, 423, "Interval Too Brief", now=now, headers=headers)
            return
        if dialog is not None:
            self._refresh(rid, dialog, expires, now)
            return
        uri = request.uri
        space_id = self.settings.route(uri.user if isinstance(uri, SipUri) else None)
        if space_id is None:
            self._endpoint.respond(rid, 404, "Unknown Space", now=now)
            return
        self._spawn(self._start(rid, space_id, str(uri), expires))

    async def _start(self, rid: int, space_id: str, entity: str, expires: int) -> None:
        try:
            await self._subscribe(space_id)
            if space_id not in self._rosters:
                await self._load(space_id)
        except NotFound:
            self._respond(rid, 404, "Unknown Space")
            return
        except SpacesError as exc:
            log.warning("conference unreachable", error=str(exc))
            self._respond(rid, 503, "Conference Unavailable", (("Retry-After", "30"),))
            return
        dialog = self._respond(rid, 200, None, (("Expires", str(expires)),))
        if dialog is None:
            return
        sub = Subscription(dialog, space_id, entity, self._clock() + expires)
        self._subs[dialog] = sub
        log.info("conference subscribed", space=space_id, expires=expires)
        if expires == 0:
            self._terminate(sub, "timeout")  # a fetch (RFC 6665 §4.4.3): one NOTIFY, then done
        else:
            sub.timer = self._later(expires, lambda: self._terminate(sub, "timeout"))
            self._notify(sub)

    def _refresh(self, rid: int, dialog: DialogId, expires: int, now: float) -> None:
        sub = self._subs.get(dialog)
        if sub is None:
            self._endpoint.respond(rid, 481, now=now)
            return
        self._endpoint.respond(rid, 200, now=now, headers=(("Expires", str(expires)),))
        if sub.timer is not None:
            sub.timer.cancel()
        if expires == 0:
            self._terminate(sub, "timeout")
            return
        sub.expires_at = now + expires
        sub.timer = self._later(expires, lambda: self._terminate(sub, "timeout"))
        sub.sent = None  # every accepted SUBSCRIBE gets a NOTIFY (RFC 6665 §4.2.1.2)
        self._notify(sub)

    async def _load(self, space_id: str) -> None:
        meeting = await self._client.active_meeting(space_id)
        entries = await self._client.roster(space_id, meeting.meeting_id)
        roster = Roster(meeting.meeting_id)
        for entry in entries:
            roster.apply(entry)
        self._rosters[space_id] = roster

    # -- the server's events -------------------------------------------------------------------------
    def on_spaces_event(self, event: ev.SpacesEvent) -> None:
        match event:
            case (
                ev.AttendeeJoined(space_id=space, entry=entry)
                | ev.AttendeeUpdated(space_id=space, entry=entry)
            ):
                if (roster := self._rosters.get(space)) is not None:
                    roster.apply(entry)
                    self._changed(space)
            case ev.AttendeeLeft(space_id=space, entry=entry):
                if (roster := self._rosters.get(space)) is not None:
                    roster.members.pop(entry.attendee_id, None)
                    self._changed(space)
            case ev.TracksStatus(space_id=space, attendee_id=aid, audio=audio):
                roster = self._rosters.get(space)
                if roster is not None and (member := roster.members.get(aid)) is not None:
                    roster.members[aid] = _user(aid, member.display_text, audio)
                    self._changed(space)
            case ev.MeetingEnded(space_id=space):
                self._rosters.pop(space, None)
                for sub in [s for s in self._subs.values() if s.space_id == space]:
                    self._terminate(sub, "noresource")
            case ev.Connected():
                for space in {s.space_id for s in self._subs.values()}:
                    self._spawn(self._reload(space))
            case _:
                pass

    async def _reload(self, space_id: str) -> None:
        try:
            await self._load(space_id)
        except NotFound:
            for sub in [s for s in self._subs.values() if s.space_id == space_id]:
                self._terminate(sub, "noresource")
            return
        except SpacesError as exc:
            log.warning("roster reload failed", space=space_id, error=str(exc))
            return
        self._changed(space_id)

    def _changed(self, space_id: str) -> None:
        for sub in self._subs.values():
            if sub.space_id == space_id:
                self._notify(sub)

    # -- NOTIFY --------------------------------------------------------------------------------------
    def _notify(self, sub: Subscription, reason: str | None = None) -> None:
        if sub.pending is not None and reason is None:
            sub.dirty = True
            return
        sub.dirty = False
        roster = self._rosters.get(sub.space_id)
        members = frozenset(roster.members.values() if roster is not None else ())
        if reason is None and members == sub.sent:
            return
        sub.sent = members
        sub.version += 1
        body = conference_info.document(sub.entity, sub.space_id, sub.version, members)
        if reason is None:
            remaining = max(0, round(sub.expires_at - self._clock()))
            state = f"active;expires={remaining}"
        else:
            state = f"terminated;reason={reason}"
        try:
            sub.pending = self._endpoint.send_in_dialog(
                sub.dialog,
                "NOTIFY",
                now=self._clock(),
                headers=(("Event", conference_info.EVENT), ("Subscription-State", state)),
                body=body,
                content_type=conference_info.CONTENT_TYPE,
            )
        except LocalProtocolError:
            self._forget(sub)
            return
        self._flush()

    def on_response(self, dialog: DialogId | None, rid: int, status: int) -> bool:
        """A response to one of our NOTIFYs; False when the dialog is not a subscription's."""
        sub = self._subs.get(dialog) if dialog is not None else None
        if sub is None:
            return False
        if sub.pending != rid or status < 200:
            return True
        sub.pending = None
        if status >= 300:
            # RFC 6665 §4.2.2: a failure response ends the subscription.
            log.info("conference subscription ended", space=sub.space_id, status=status)
            self._forget(sub)
        elif sub.dirty:
            self._notify(sub)
        return True

    def _terminate(self, sub: Subscription, reason: str) -> None:
        if sub.dialog not in self._subs:
            return
        self._notify(sub, reason)
        self._forget(sub)

    def _forget(self, sub: Subscription) -> None:
        self._subs.pop(sub.dialog, None)
        if sub.timer is not None:
            sub.timer.cancel()
        self._endpoint.forget_dialog(sub.dialog)
        if not any(s.space_id == sub.space_id for s in self._subs.values()):
            self._rosters.pop(sub.space_id, None)

    def close_all(self) -> None:
        """Shutdown: every subscriber gets its final NOTIFY (RFC 6665 §4.2.2, reason deactivated)."""
        for sub in list(self._subs.values()):
            self._terminate(sub, "deactivated")

    def _respond(
        self, rid: int, status: int, reason: str | None, headers: tuple[tuple[str, str], ...] = ()
    ) -> DialogId | None:
        try:
            dialog = self._endpoint.respond(rid, status, reason, now=self._clock(), headers=headers)
        except LocalProtocolError:
            return None
        self._flush()
        return dialog


def _user(attendee_id: str, display_name: str, audio: bool) -> conference_info.User:
    # The attendee's URN names it in the document: stable for the attendee, and no SIP address.
    return conference_info.User(f"urn:spaces:attendee:{attendee_id}", display_name, audio)


def _expires(value: str | None) -> int | None:
    if value is None:
        return DEFAULT_EXPIRES
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    return min(int(text), DEFAULT_EXPIRES)
