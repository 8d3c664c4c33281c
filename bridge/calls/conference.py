"""Calls into Spaces meetings: the orchestrator between the SIP endpoint and the conference server.

It owns no policy: :mod:`bridge.calls.policy` decides what a phone's action or a server event means;
this module routes each SIP event and conference event to the collaborator that acts on it, and
composes them: ``joining`` (new INVITEs into meetings), ``lobby`` (waiting for a moderator),
``menuentry`` (dial-in calls through the voice menu), ``actions`` (what a phone asks), ``signalling``
(re-offers and INFO events until the phone agrees with the server), ``book`` (the calls in progress
and their end). It keeps the server events' fan-out, the resync after a reconnection and the drain.
SIP work is synchronous (the endpoint is sans-IO); conference work runs in tasks, one at a time per
call, so that a call's commands keep their order.
"""

from __future__ import annotations

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
    Request,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Retransmission,
    UasPolicy,
)
from . import policy
from .access import Access, AuthConfig, Refusal
from .actions import ATTENDEE_TYPE, RETRY_AFTER, Actions
from .attendance import Attendance
from .audio import CallAudio
from .book import CallBook
from .call import Call, clog
from .dialin import DialInMenus
from .joining import Joining
from .lobby import Lobby
from .menuentry import MenuEntry
from .protocols import Cancellable, Media
from .settings import CallSettings
from .signalling import Responder, Signalling
from .subscriptions import Subscriptions
from .version import Generation

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
        attendance = Attendance(client, subscribe=subscribe)
        self._book = CallBook(
            endpoint,
            self._respond,
            self.audio,
            attendance,
            clock=clock,
            flush=flush,
            spawn=spawn,
            # Late bound, like the actions: the menus are made below and hang up through the book.
            on_end=lambda call: self.menus.end(call),  # noqa: PLW0108
            metrics=metrics,
        )
        self.menus = DialInMenus(
            client,
            self.audio,
            settings,
            clock=clock,
            spawn=spawn,
            later=later,
            enter=lambda call, space, host: self._menu_entry.enter(call, space, host),  # noqa: PLW0108
            hang_up=lambda call, why, reason: self._book.hang_up(call, why, reason=reason),
            metrics=metrics,
        )
        self._actions.on_menu_key = self.menus.on_key
        # Joining, the lobby and the menu's entry call on each other: bound through lambdas to
        # the joining made last.
        self._lobby = Lobby(
            client,
            self._book,
            settings,
            audio=self.audio,
            signal=self._signal,
            respond=self._respond,
            flush=flush,
            spawn=spawn,
            later=later,
            admit=lambda call: self._joining.admit(call),  # noqa: PLW0108
            resync=self._resync_call,
        )
        self._menu_entry = MenuEntry(
            self.menus,
            self._book,
            audio=self.audio,
            signal=self._signal,
            respond=self._respond,
            flush=flush,
            spawn=spawn,
            enter=lambda call: self._joining.enter(call),  # noqa: PLW0108
        )
        self._joining = Joining(
            endpoint,
            self._book,
            settings,
            attendance=attendance,
            audio=self.audio,
            signal=self._signal,
            respond=self._respond,
            lobby=self._lobby,
            menu_entry=self._menu_entry,
            flush=flush,
            spawn=spawn,
        )
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
        self.draining = False

    @property
    def active(self) -> int:
        return len(self._book.by_dialog)

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
        self._joining.settings = settings
        self._lobby.settings = settings
        self.menus.reconfigure(settings)

    def dialogs(self, version: str) -> int:
        """Established calls of one endpoint generation (``legacy`` or ``modern``)."""
        return sum(1 for c in self._book.by_dialog.values() if c.state.generation.value == version)

    @property
    def waiting(self) -> int:
        return sum(1 for c in self._book.calls.values() if c.waiting)

    def calls(self) -> Iterator[Call]:
        return iter(list(self._book.calls.values()))

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
                call = self._book.calls.get(request.call_id)
                if call is not None and call.dialog is None:
                    call.request_id = None  # the endpoint answered 487
                    self._book.end(call, "cancelled")
            case DialogConfirmed(dialog=dialog):
                call = self._book.by_dialog.get(dialog)
                if call is not None:
                    clog(call).info("call confirmed")
                    self._signal.reconcile(call)
                    # Set-up logs several lines in a row; an established call logs rarely, and its
                    # bound logger is ~400 bytes of every held call: bound again when needed.
                    call.logger = None
            case DialogTerminated(dialog=dialog, reason=reason):
                call = self._book.by_dialog.get(dialog)
                if call is not None:
                    self._book.end(call, reason.value)
            case ResponseReceived(request_id=rid, response=response, dialog=dialog):
                self._on_response(rid, response.status, dialog)
            case RequestFailed(request_id=rid, dialog=dialog):
                self._on_response(rid, 408, dialog)
            case GlareRetryDue(dialog=dialog):
                call = self._book.by_dialog.get(dialog)
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
            elif self.draining:
                self._endpoint.respond(rid, 503, "Shutting Down", now=now, headers=RETRY_AFTER)
            else:
                self._joining.on_invite(rid, request, now, caller, source)
        elif method in ("INVITE", "INFO"):
            call = self._book.by_dialog.get(dialog) if dialog is not None else None
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

    # -- the phone's answers -------------------------------------------------------------------------
    def _on_response(self, rid: int, status: int, dialog: DialogId | None) -> None:
        if self.subscriptions.on_response(dialog, rid, status):
            return
        call = self._book.by_dialog.get(dialog) if dialog is not None else None
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
                for call in self._book.in_space(space):
                    self._run(call, policy.on_mute_all(call.state, excluded=False, done=False))
            case ev.MuteAllDone(space_id=space, exclude=exclude):
                for call in self._book.in_space(space):
                    excluded = call.attendee_id in exclude
                    self._run(call, policy.on_mute_all(call.state, excluded=excluded, done=True))
            case ev.SettingsUpdated(space_id=space, settings=settings):
                for call in self._book.in_space(space):
                    enabled = settings.prevent_unmuting
                    self._run(call, policy.on_prevent_unmuting(call.state, enabled))
            case ev.PermissionUpdated(target_id=aid, kind="MEETING_JOIN", state=state):
                self._lobby.decide(aid, state)
            case ev.AttendeeMedia(attendee_id=aid, media=media):
                moved = self._book.by_attendee.get(aid)
                if moved is not None and not moved.ended:
                    self.audio.connect(moved, media)
            case ev.AttendeeLeft(entry=entry):
                gone = self._book.by_attendee.get(entry.attendee_id)
                if gone is not None and gone.request_id is None:
                    self._book.hang_up(gone, "removed from the meeting")
            case ev.MeetingEnded(space_id=space, meeting_id=meeting):
                for call in self._book.in_space(space):
                    if call.meeting_id == meeting:
                        self._signal.notify(call, policy.Notify("meeting", "ended"))
                        if call.request_id is not None:
                            self._book.refuse(
                                call, 480, "Meeting Ended", "meeting ended in the lobby"
                            )
                        else:
                            self._book.farewell(call)
            case ev.Connected():
                # Events sent while the socket was down (or not yet up, for calls that joined
                # first) are lost: re-read every call's state (docs/behaviour.md, Meeting
                # lifecycle). A reconnection also reports Resynced, which this already covers.
                log.info("conference connected")
                for space in {c.space_id for c in self._book.calls.values()}:
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
        call = self._book.by_attendee.get(attendee_id)
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

    async def _resync(self, space_id: str) -> None:
        """After a reconnection: re-read every call's state; re-signal phones that disagree."""
        for call in self._book.in_space(space_id):
            await self._resync_call(call)

    async def _resync_call(self, call: Call) -> None:
        if call.meeting_id is None or call.attendee_id is None:
            return
        try:
            details = await self._client.meeting(call.space_id, call.meeting_id)
        except NotFound:
            # A server that restarted without its state: the meeting is gone (docs/behaviour.md,
            # Meeting lifecycle).
            self._book.hang_up(call, "meeting gone")
            return
        except SpacesError as exc:
            clog(call).warning("resync failed", error=str(exc))
            return
        entry = next((a for a in details.attendees if a.attendee_id == call.attendee_id), None)
        if details.state != "active" or entry is None:
            self._book.hang_up(call, "gone from the meeting")
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

    # -- drain ---------------------------------------------------------------------------------------
    def refuse_new_calls(self) -> None:
        """First step of a drain: new INVITEs get 503 from now on."""
        self.draining = True

    def drain(self) -> int:
        """Refuse waiting callers and hang up every established call; returns how many got BYE."""
        self.draining = True
        self.subscriptions.close_all()
        count = 0
        for call in list(self._book.calls.values()):
            if call.request_id is not None:
                self._book.refuse(call, 503, "Shutting Down", "shutdown", headers=RETRY_AFTER)
            elif call.dialog is not None:
                self._book.hang_up(call, "shutdown")
                count += 1
        self._flush()
        return count


__all__ = ["Call", "ConferenceCalls", "Generation"]
