"""Calls into Spaces meetings: the orchestrator between the SIP endpoint and the conference server.

It owns no policy: :mod:`bridge.calls.policy` decides what a phone's action or a server event means;
this module performs the resulting REST calls, answers the phone's requests, and re-offers SDP (or
sends INFO events) until the phone agrees with the server. SIP work is synchronous (the endpoint is
sans-IO); conference work runs in tasks, one at a time per call, so that a call's commands keep
their order.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import assert_never

import structlog

from ..conference.client import events as ev
from ..conference.client.client import SpacesClient
from ..conference.client.errors import NotFound, SpacesError
from ..media.relay import Relay
from ..ops.metrics import METHODS, Metrics
from ..sip import (
    DialogConfirmed,
    DialogId,
    DialogTerminated,
    Endpoint,
    Event,
    GlareRetryDue,
    InviteCancelled,
    MessageRejected,
    RemoteProtocolError,
    Request,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Retransmission,
    SipUri,
    UasPolicy,
    sdp,
)
from . import policy
from .access import Access, AuthConfig, Caller, Refusal
from .actions import ATTENDEE_TYPE, RETRY_AFTER, Actions
from .attendance import Attendance, Refused
from .audio import CallAudio
from .call import Call, Phase, Step, clog
from .dialin import DialInMenus
from .protocols import Cancellable, Media
from .settings import CallSettings
from .signalling import Responder, Signalling
from .subscriptions import Subscriptions
from .version import Generation, classify

log = structlog.get_logger("bridge.calls")

#: What the bridge serves: the endpoint refuses other methods itself (405 with Allow, or 501), and
#: the call layer answers OPTIONS with the same Allow.
UAS_POLICY = UasPolicy(
    allowed_methods=frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "SUBSCRIBE"})
)
ALLOW = UAS_POLICY.allow_header


class ConferenceCalls:
    """Turns endpoint events and conference events into each other; one instance per daemon."""

    def __init__(
        self,
        endpoint: Endpoint,
        media: Media | None,
        client: SpacesClient,
        settings: CallSettings,
        *,
        subscribe: Callable[[str], Awaitable[None]],
        clock: Callable[[], float],
        flush: Callable[[], None],
        spawn: Callable[[Awaitable[object]], None],
        later: Callable[[float, Callable[[], None]], Cancellable],
        metrics: Metrics | None = None,
        access: Access | None = None,
        relay: Relay | None = None,
        prompts: bool = False,
    ) -> None:
        """``media`` is the shared anchor (``[media] relay = false``); ``relay`` the per-call relay,
        which replaces it."""
        self._metrics = metrics
        self._access = access or Access(AuthConfig())
        self._endpoint = endpoint
        self._respond = Responder(endpoint, clock)
        self._client = client
        self._settings = settings
        self._clock = clock
        self._flush = flush
        self._spawn = spawn
        self._later = later
        self.audio = CallAudio(
            relay,
            media,
            settings.media_host,
            prompts=prompts,
            later=later,
            # Late bound: the actions are made below, with the signalling this audio is part of.
            on_key=lambda call, key: self._actions.on_rtp_key(call, key),  # noqa: PLW0108
            on_talking=self._on_talking,
        )
        self._signal = Signalling(
            endpoint, settings, clock=clock, flush=flush, metrics=metrics, audio=self.audio
        )
        self._actions = Actions(
            endpoint,
            client,
            self._signal,
            settings,
            clock=clock,
            flush=flush,
            spawn=spawn,
            metrics=metrics,
        )
        self._attendance = Attendance(client, subscribe=subscribe)
        self.menus = DialInMenus(
            client,
            self.audio,
            settings,
            clock=clock,
            spawn=spawn,
            later=later,
            enter=self._enter_from_menu,
            hang_up=lambda call, why, reason: self._hang_up(call, why, reason=reason),
            metrics=metrics,
        )
        self._actions.on_menu_key = self.menus.on_key
        self.subscriptions = Subscriptions(
            endpoint,
            client,
            settings,
            subscribe=subscribe,
            clock=clock,
            flush=flush,
            spawn=spawn,
            later=later,
        )
        self._calls: dict[str, Call] = {}  # by Call-ID
        self._by_dialog: dict[DialogId, Call] = {}
        self._by_attendee: dict[str, Call] = {}
        self._session_ids = itertools.count(1)
        self.draining = False
        self._joining = 0  # calls between INVITE and the conference's answer

    @property
    def active(self) -> int:
        return len(self._by_dialog)

    @property
    def settings(self) -> CallSettings:
        return self._settings

    def reconfigure(self, settings: CallSettings) -> None:
        """New call settings (SIGHUP): calls already in progress keep the methods they started with;
        everything else (routing, keys, lobby timings for new waits) follows at once."""
        self._settings = settings
        self._signal.settings = settings
        self._actions.settings = settings
        self.subscriptions.settings = settings
        self.menus.reconfigure(settings)

    def dialogs(self, version: str) -> int:
        """Established calls of one endpoint generation (``legacy`` or ``modern``)."""
        return sum(1 for c in self._by_dialog.values() if c.state.generation.value == version)

    @property
    def waiting(self) -> int:
        return sum(1 for c in self._calls.values() if c.waiting)

    def calls(self) -> Iterator[Call]:
        return iter(list(self._calls.values()))

    # -- SIP events ----------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        match event:
            case RequestReceived(request_id=rid, request=request, source=source, dialog=dialog):
                if not self._access.source_allowed(source.host):
                    now = self._clock()
                    self._endpoint.respond(rid, 403, "Source Not Allowed", now=now)
                    return
                self._on_request(rid, request, dialog, source.host)
            case InviteCancelled(request=request):
                call = self._calls.get(request.call_id)
                if call is not None and call.dialog is None:
                    call.request_id = None  # the endpoint answered 487
                    self._end(call, "cancelled")
            case DialogConfirmed(dialog=dialog):
                call = self._by_dialog.get(dialog)
                if call is not None:
                    clog(call).info("call confirmed")
                    self._signal.reconcile(call)
                    # Set-up logs several lines in a row; an established call logs rarely, and its
                    # bound logger is ~400 bytes of every held call: bound again when needed.
                    call.logger = None
            case DialogTerminated(dialog=dialog, reason=reason):
                call = self._by_dialog.get(dialog)
                if call is not None:
                    self._end(call, reason.value)
            case ResponseReceived(request_id=rid, response=response, dialog=dialog):
                self._on_response(rid, response.status, dialog)
            case RequestFailed(request_id=rid, dialog=dialog):
                self._on_response(rid, 408, dialog)
            case GlareRetryDue(dialog=dialog):
                call = self._by_dialog.get(dialog)
                if call is not None:
                    self._signal.reconcile(call)
            case MessageRejected(source=source, reason=reason, status=status):
                log.info("message rejected", source=str(source), reason=reason, status=status)
                if self._metrics is not None:
                    self._metrics.rejected.labels(str(status or "dropped")).inc()
            case Retransmission(method=method):
                if self._metrics is not None:
                    known = method if method in METHODS else "other"
                    self._metrics.retransmissions.labels(known).inc()
            case _:
                assert_never(event)

    def _on_request(self, rid: int, request: Request, dialog: DialogId | None, source: str) -> None:
        method = request.method
        now = self._clock()
        if method == "OPTIONS":
            headers: tuple[tuple[str, str], ...] = (
                ("Allow", ALLOW),
                ("Accept", "application/sdp"),
                ("Supported", ""),
            )
            if self.draining:
                # A proxy's probe (Kamailio's dispatcher) takes a node answering 503 out of its
                # set, so new calls go to the other nodes while this one drains (docs/scale-out.md).
                headers += RETRY_AFTER
                self._endpoint.respond(rid, 503, "Shutting Down", now=now, headers=headers)
            else:
                self._endpoint.respond(rid, 200, now=now, headers=headers)
        elif method == "INVITE" and dialog is None:
            caller = self._access.caller(request, now)
            if isinstance(caller, Refusal):
                self._endpoint.respond(
                    rid, caller.status, caller.reason, now=now, headers=caller.headers
                )
            else:
                self._on_invite(rid, request, now, caller, source)
        elif method in ("INVITE", "INFO"):
            call = self._by_dialog.get(dialog) if dialog is not None else None
            if call is None:
                self._endpoint.respond(rid, 481, now=now)
            elif method == "INFO":
                self._actions.on_info(call, rid, request, now)
            else:
                self._actions.on_reinvite(call, rid, request, now)
        elif method == "SUBSCRIBE":
            outcome = self._access.caller(request, now) if dialog is None else None
            if isinstance(outcome, Refusal):
                self._endpoint.respond(
                    rid, outcome.status, outcome.reason, now=now, headers=outcome.headers
                )
            else:
                self.subscriptions.on_subscribe(rid, request, dialog)
        else:
            self._endpoint.respond(rid, 405, now=now, headers=(("Allow", ALLOW),))

    # -- joining -------------------------------------------------------------------------------------
    def _on_invite(
        self, rid: int, request: Request, now: float, caller: Caller, source: str
    ) -> None:
        if self.draining:
            self._endpoint.respond(rid, 503, "Shutting Down", now=now, headers=RETRY_AFTER)
            return
        uri = request.uri
        user = uri.user if isinstance(uri, SipUri) else None
        menu = self._settings.is_menu(user)
        # A menu call has no space until the caller keys one (docs/calls.md).
        space_id = "" if menu else self._settings.route(user)
        if space_id is None:
            self._endpoint.respond(rid, 404, "Unknown Space", now=now)
            return
        if self._joining >= self._settings.max_joining:
            # Admission control: a flood of INVITEs must not queue unbounded conference work
            # ahead of the calls already in progress; refusing costs almost nothing.
            self._endpoint.respond(rid, 503, "Too Many Calls Joining", now=now, headers=RETRY_AFTER)
            return
        try:
            offer = sdp.parse_sdp(request.body) if request.body else None
        except RemoteProtocolError as exc:
            self._endpoint.respond(rid, exc.status_hint, exc.reason, now=now)
            return
        version = request.headers.get(self._settings.version_header)
        generation = classify(version)
        call = Call(
            call_id=request.call_id,
            space_id=space_id,
            display_name=request.from_.display_name or _user_of(request),
            state=policy.CallState(generation, moderator=caller.role == "moderator"),
            role=caller.role,
            endpoint_version=version.strip()[:16]
            if version and generation.value == "modern"
            else None,
            methods=self._settings.methods(generation, request.headers.get("user-agent")),
            request_id=rid,
            offer=offer,
            session_id=next(self._session_ids),
        )
        self._calls[call.call_id] = call
        clog(call).info("call offered", attendee=call.display_name, menu=menu)
        self._joining += 1
        origin = self._settings.origin(request, source)
        self._spawn(self._answer_menu(call, origin) if menu else self._join(call))

    async def _join(self, call: Call) -> None:
        try:
            if self.audio.relaying and not await self.audio.open(call):
                # Every port block carries a call: a new one would have no audio.
                self._refuse(
                    call, 503, "Media Ports Exhausted", "no free media ports", headers=RETRY_AFTER
                )
                return
            await self._enter(call)
        finally:
            self._joining -= 1

    async def _enter(self, call: Call) -> None:
        """Join the call's space's meeting: answer the INVITE, or the lobby; a menu's call is
        answered already."""
        try:
            admitted, endpoint = await self._attendance.join(call, media=self.audio.offer(call))
        except Refused as no:
            if call.dialog is None:
                self._refuse(
                    call,
                    no.status,
                    no.reason,
                    no.why,
                    headers=no.headers,
                    reason_text=no.reason_text,
                )
            else:  # answered by the menu: goodbye, then BYE saying why
                self.menus.refused(call, no.why, (no.status, no.reason_text or no.reason))
            return
        assert call.attendee_id is not None
        self._by_attendee[call.attendee_id] = call
        self.audio.connect(call, endpoint)
        if call.ended:  # hung up while joining: the attendee it became leaves again
            self._spawn(self._attendance.leave(call))
        elif call.request_id is None and call.phase is not Phase.MENU:  # cancelled
            self._end(call, "cancelled")
        elif admitted:
            await self._admit(call)
        else:
            await self._wait_in_lobby(call)

    async def _answer_menu(self, call: Call, source: str) -> None:
        """A call to a dial-in number: answered with media, then the voice menu (docs/calls.md)."""
        try:
            available = await self.menus.probe()
            opened = bool(available) and await self.audio.open(call)
        finally:
            self._joining -= 1
        if call.ended:  # cancelled meanwhile
            self.audio.close(call, "cancelled")
            return
        if not available:
            if available is None:
                why = "conference server unreachable"
                self._refuse(call, 503, "Conference Unavailable", why, headers=RETRY_AFTER)
            else:
                self._refuse(call, 404, "Dial-In Unavailable", "the server has no dial-in IDs")
            return
        if not opened:
            why = "no free media ports"
            self._refuse(call, 503, "Media Ports Exhausted", why, headers=RETRY_AFTER)
            return
        call.advance(Step.MENU)
        try:
            local = self._signal.describe(call, call.offer)
        except RemoteProtocolError as exc:
            self._refuse(call, exc.status_hint, exc.reason, "no common codec")
            return
        assert call.request_id is not None
        rid, call.request_id, call.offer = call.request_id, None, None
        call.dialog = self._respond(rid, 200, body=local)
        self._flush()
        if call.dialog is None:
            self._end(call, "cancelled")
            return
        self._by_dialog[call.dialog] = call
        self.menus.start(call, source)

    def _enter_from_menu(self, call: Call, space_id: str, host: bool) -> None:
        """The menu's caller chose ``space_id`` (as its host when ``host``): join it in the same
        call; the Request-URI stays the menu's."""
        call.space_id, call.logger = space_id, None
        if host:
            call.role, call.state.moderator = "moderator", True
        self._spawn(self._enter(call))

    async def _wait_in_lobby(self, call: Call) -> None:
        """Ring (re-sent so proxies keep the call) until a moderator decides or time runs out
        (docs/behaviour.md, Lobby)."""
        assert call.meeting_id is not None and call.attendee_id is not None
        waiting = sum(1 for c in self._in_space(call.space_id) if c.waiting)
        if waiting >= self._settings.lobby_limit:
            # A bound on what strangers can make the bridge hold; they may try again later.
            why = f"{waiting} callers already wait in the lobby"
            self._refuse(call, 480, "Lobby Full", why, headers=RETRY_AFTER)
            return
        try:
            await self._client.request_permission(
                call.space_id, call.meeting_id, call.attendee_id, ATTENDEE_TYPE
            )
        except SpacesError as exc:
            self._refuse(call, 503, "Conference Unavailable", str(exc), headers=RETRY_AFTER)
            return
        clog(call).info("caller waiting")
        if call.ended:
            return  # cancelled or refused meanwhile: nobody waits
        menu = call.phase is Phase.MENU
        call.advance(Step.LOBBY)

        def ring() -> None:
            if call.request_id is not None and not call.ended:
                self._respond(call.request_id, 180)
                self._flush()
                call.add_timer(self._later(self._settings.ringing_interval, ring))

        def give_up() -> None:
            if call.waiting:
                why = "nobody admitted the caller in time"
                if call.request_id is not None:
                    self._refuse(call, 480, "Lobby Timeout", why)
                else:
                    self._hang_up(call, why, reason=(480, "Lobby Timeout"))

        call.add_timer(self._later(self._settings.lobby_timeout, give_up))
        if menu:
            # Answered by the menu: the caller hears the waiting prompt where it is.
            self._signal.notify(call, policy.Notify("lobby", "waiting"))
            self.audio.lobby(call)
        elif self._settings.lobby_answer:
            # The variant for phones and proxies that give up on long ringing: answer now with
            # the media inactive, and re-offer once a moderator admits the caller.
            await self._admit(call)
            self._signal.notify(call, policy.Notify("lobby", "waiting"))
        elif self.audio.early_answer(call) and call.request_id is not None:
            # Early media (183 with our SDP, RFC 3960's gateway model): the caller hears the
            # waiting prompt instead of ringing. The 200 repeats this SDP (RFC 3261 §13.2.1).
            try:
                call.early_sdp = self._signal.describe(call, call.offer, early=True)
            except RemoteProtocolError as exc:
                self._refuse(call, exc.status_hint, exc.reason, "no common codec")
                return
            status = 183

            def early() -> None:
                if call.request_id is not None and call.waiting:
                    self._respond(call.request_id, status, body=call.early_sdp or b"")
                    self._flush()
                    call.add_timer(self._later(self._settings.ringing_interval, early))

            early()
            self.audio.lobby(call)
        else:
            ring()

    async def _admit(self, call: Call) -> None:
        """Answer the INVITE: muted from the first answer if the server says so (no audio leaks)."""
        if call.phase is Phase.MENU:
            # Answered by the menu with sendrecv: a re-offer follows if the server mutes it.
            call.advance(Step.JOIN)
            self.audio.admitted(call)
            clog(call).info("call joined", audio=call.state.audio)
            self._signal.reconcile(call)
            return
        if call.media is None:
            await self.audio.open(call)  # the shared anchor: always a port
        if call.request_id is None or call.ended:
            return
        call.advance(Step.ANSWER)  # admitted, or answered in the lobby with inactive media
        rid, call.request_id = call.request_id, None
        if not call.waiting:
            call.cancel_timers()
            self.audio.admitted(call)
        try:
            if call.early_sdp is not None:
                # Our early media's SDP is the answer: the 200 repeats it; a re-offer follows if
                # the server's state differs from what it says (sendonly).
                local, call.early_sdp = call.early_sdp, None
                self.audio.update(call)
            else:
                local = self._signal.describe(call, call.offer)
        except RemoteProtocolError as exc:
            self._respond(rid, exc.status_hint, exc.reason)
            self._end(call, "no common codec")
            self._flush()
            return
        # Answered: re-offers build on our own last SDP; the phone's parsed offer is ~1 KiB a call.
        call.offer = None
        call.dialog = self._respond(rid, 200, body=local)
        if call.dialog is None:
            self._end(call, "cancelled")
        else:
            self._by_dialog[call.dialog] = call
            clog(call).info("call answered", audio=call.state.audio)
        self._flush()

    def _refuse(
        self,
        call: Call,
        status: int,
        reason: str,
        why: str,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        reason_text: str | None = None,
    ) -> None:
        if call.request_id is not None:
            rid, call.request_id = call.request_id, None
            if reason_text is not None:
                # RFC 3326: say why in a form phones can show.
                headers = (*headers, ("Reason", f'SIP;cause={status};text="{reason_text}"'))
            self._respond(rid, status, reason, headers=headers)
            self._flush()
        clog(call).info("call refused", status=status, why=why)
        self._end(call, f"refused {status}")

    # -- the phone's answers -------------------------------------------------------------------------
    def _on_response(self, rid: int, status: int, dialog: DialogId | None) -> None:
        if self.subscriptions.on_response(dialog, rid, status):
            return
        call = self._by_dialog.get(dialog) if dialog is not None else None
        if call is not None:
            self._signal.on_response(call, rid, status)

    # -- conference events ---------------------------------------------------------------------------
    def on_spaces_event(self, event: ev.SpacesEvent) -> None:
        self.subscriptions.on_spaces_event(event)
        match event:
            case ev.TracksStatus(attendee_id=aid, audio=audio, video=video):
                self._apply(aid, lambda s: policy.on_server_media(s, audio, video, ordered=False))
            case ev.TracksStatusChangeRequest(attendee_id=aid, audio=audio, video=video):
                self._apply(aid, lambda s: policy.on_server_media(s, audio, video, ordered=True))
            case ev.AttendeeUpdated(entry=entry):
                hand = policy.Hand(entry.hand.value)
                self._apply(entry.attendee_id, lambda s: policy.on_hand(s, hand))
            case ev.MuteAllStarted(space_id=space):
                for call in self._in_space(space):
                    self._run(call, policy.on_mute_all(call.state, excluded=False, done=False))
            case ev.MuteAllDone(space_id=space, exclude=exclude):
                for call in self._in_space(space):
                    excluded = call.attendee_id in exclude
                    self._run(call, policy.on_mute_all(call.state, excluded=excluded, done=True))
            case ev.SettingsUpdated(space_id=space, settings=settings):
                for call in self._in_space(space):
                    enabled = settings.prevent_unmuting
                    self._run(call, policy.on_prevent_unmuting(call.state, enabled))
            case ev.PermissionUpdated(target_id=aid, kind="MEETING_JOIN", state=state):
                self._lobby_decision(aid, state)
            case ev.AttendeeMedia(attendee_id=aid, media=media):
                moved = self._by_attendee.get(aid)
                if moved is not None and not moved.ended:
                    self.audio.connect(moved, media)
            case ev.AttendeeLeft(entry=entry):
                gone = self._by_attendee.get(entry.attendee_id)
                if gone is not None and gone.request_id is None:
                    self._hang_up(gone, "removed from the meeting")
            case ev.MeetingEnded(space_id=space, meeting_id=meeting):
                for call in self._in_space(space):
                    if call.meeting_id == meeting:
                        self._signal.notify(call, policy.Notify("meeting", "ended"))
                        if call.request_id is not None:
                            self._refuse(call, 480, "Meeting Ended", "meeting ended in the lobby")
                        else:
                            self._farewell(call)
            case ev.Connected():
                # Events sent while the socket was down (or not yet up, for calls that joined
                # first) are lost: re-read every call's state (docs/behaviour.md, Meeting
                # lifecycle). A reconnection also reports Resynced, which this already covers.
                log.info("conference connected")
                for space in {c.space_id for c in self._calls.values()}:
                    self._spawn(self._resync(space))
            case ev.Resynced():
                pass
            case ev.Disconnected(reason=reason):
                log.warning("conference disconnected", reason=reason)
            case ev.PermissionRequested() | ev.PermissionUpdated() | ev.AttendeeJoined():
                pass  # hands are followed through attendee updates; joins are others' business

    def _apply(
        self, attendee_id: str, decide: Callable[[policy.CallState], list[policy.Command]]
    ) -> None:
        call = self._by_attendee.get(attendee_id)
        if call is not None and not call.ended:
            self._run(call, decide(call.state))

    def _run(self, call: Call, commands: list[policy.Command]) -> None:
        """Perform what a server event means for ``call``, then tell the phone."""
        if call.event_at is None:
            call.event_at = self._clock()
        if commands:
            self._spawn(self._actions.perform(call, commands))
        else:
            self._signal.reconcile(call)

    def _in_space(self, space_id: str) -> list[Call]:
        return [c for c in self._calls.values() if c.space_id == space_id and not c.ended]

    def _lobby_decision(self, attendee_id: str, state: str) -> None:
        call = self._by_attendee.get(attendee_id)
        if call is None or not call.waiting:
            return
        if state == "GRANTED":
            clog(call).info("caller admitted")
            call.advance(Step.ADMIT)
            call.cancel_timers()
            if call.phase is Phase.ADMITTED_INACTIVE:
                # Answered in the lobby with inactive media: re-offer (the answer variant in
                # docs/behaviour.md, Lobby).
                # Moved now, not in the task: the admission's own media event may come first,
                # and its re-offer must already carry the admission (one re-INVITE, not two).
                self._signal.notify(call, policy.Notify("lobby", "admitted"))
            self._spawn(self._admitted(call))
        elif state == "REJECTED":
            why = "denied by a moderator"
            if call.request_id is not None:
                self._refuse(call, 603, "Decline", why, reason_text="Guest denied")
            else:
                self._signal.notify(call, policy.Notify("lobby", "denied"))
                self._hang_up(call, why, reason=(603, "Guest denied"))

    async def _admitted(self, call: Call) -> None:
        # Admission may have muted the caller (mute on entry); read the state it starts with.
        await self._resync_call(call)
        if call.dialog is None:
            await self._admit(call)
        else:
            self.audio.admitted(call)  # a menu's caller heard the waiting prompt
            self._signal.reconcile(call)

    async def _resync(self, space_id: str) -> None:
        """After a reconnection: re-read every call's state; re-signal phones that disagree."""
        for call in self._in_space(space_id):
            await self._resync_call(call)

    async def _resync_call(self, call: Call) -> None:
        if call.meeting_id is None or call.attendee_id is None:
            return
        try:
            details = await self._client.meeting(call.space_id, call.meeting_id)
        except NotFound:
            # A server that restarted without its state: the meeting is gone (docs/behaviour.md,
            # Meeting lifecycle).
            self._hang_up(call, "meeting gone")
            return
        except SpacesError as exc:
            clog(call).warning("resync failed", error=str(exc))
            return
        entry = next((a for a in details.attendees if a.attendee_id == call.attendee_id), None)
        if details.state != "active" or entry is None:
            self._hang_up(call, "gone from the meeting")
            return
        commands = policy.on_server_media(
            call.state, entry.media_state.audio, entry.media_state.video, ordered=False
        )
        commands += policy.on_hand(call.state, policy.Hand(entry.hand.value))
        commands += policy.on_prevent_unmuting(call.state, details.settings.prevent_unmuting)
        self._run(call, commands)

    # -- helpers -------------------------------------------------------------------------------------
    def _on_talking(self, call: Call, talking: bool) -> None:
        """The phone started or stopped speaking into the meeting: the consoles' dot. Best effort:
        a lost report is corrected by the next change."""
        meeting, attendee = call.meeting_id, call.attendee_id
        if call.ended or meeting is None or attendee is None:
            return

        async def report() -> None:
            try:
                await self._client.report_talking(
                    call.space_id, meeting, ATTENDEE_TYPE, attendee, talking=talking
                )
            except SpacesError as exc:
                clog(call).debug("talking not reported", error=str(exc))

        self._spawn(report())

    def _farewell(self, call: Call) -> None:
        """The meeting ended: the phone hears so (when prompts play), then gets BYE."""

        def bye() -> None:
            if not call.ended:
                self._hang_up(call, "meeting ended")

        self.audio.farewell(call, bye)

    def _hang_up(self, call: Call, why: str, *, reason: tuple[int, str] | None = None) -> None:
        """BYE, with an RFC 3326 ``Reason`` when ``reason`` (cause, text) says why."""
        self._end(call, why)  # first, so that the BYE's own DialogTerminated finds nothing to end
        if call.dialog is not None and self._endpoint.dialog(call.dialog) is not None:
            headers: tuple[tuple[str, str], ...] = ()
            if reason is not None:
                headers = (("Reason", f'SIP;cause={reason[0]};text="{reason[1]}"'),)
            self._endpoint.send_in_dialog(call.dialog, "BYE", now=self._clock(), headers=headers)
            self._flush()

    def _end(self, call: Call, why: str) -> None:
        """Forget the call, release its port, and leave the meeting (which also withdraws a lobby
        request)."""
        if call.ended:
            return
        call.advance(Step.END)
        if self._metrics is not None:
            self._metrics.calls.labels(_outcome(call, why)).inc()
        self._calls.pop(call.call_id, None)
        if call.dialog is not None:
            self._by_dialog.pop(call.dialog, None)
        call.cancel_timers()
        self.menus.end(call)
        self.audio.close(call, why)
        if call.attendee_id is not None:
            self._by_attendee.pop(call.attendee_id, None)
            self._spawn(self._attendance.leave(call))
        clog(call).info("call ended", reason=why)

    # -- drain ---------------------------------------------------------------------------------------
    def refuse_new_calls(self) -> None:
        """First step of a drain: new INVITEs get 503 from now on."""
        self.draining = True

    def drain(self) -> int:
        """Refuse waiting callers and hang up every established call; returns how many got BYE."""
        self.draining = True
        self.subscriptions.close_all()
        count = 0
        for call in list(self._calls.values()):
            if call.request_id is not None:
                self._refuse(call, 503, "Shutting Down", "shutdown", headers=RETRY_AFTER)
            elif call.dialog is not None:
                self._hang_up(call, "shutdown")
                count += 1
        self._flush()
        return count


def _outcome(call: Call, why: str) -> str:
    """A small, fixed set of outcomes for the calls counter."""
    if call.dialog is not None:
        return "completed"
    if why == "cancelled":
        return "cancelled"
    if why.startswith("refused "):
        return "refused_" + why.removeprefix("refused ")
    return "failed"


def _user_of(request: Request) -> str:
    uri = request.from_.uri
    return uri.user or "phone" if isinstance(uri, SipUri) else "phone"


__all__ = ["Call", "ConferenceCalls", "Generation"]
