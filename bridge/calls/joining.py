"""A new call's way into its meeting: the INVITE's checks (routing, admission control, the offer),
the call it becomes, joining the space's meeting (straight away, or after the voice menu), and the
answer, muted from the first SDP when the server says so. Waiting for a moderator is
:mod:`bridge.calls.lobby`'s; the menu call's answer is :mod:`bridge.calls.menuentry`'s.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

from ..sip import Endpoint, RemoteProtocolError, Request, SipUri, sdp
from . import infopackage, policy
from .access import Caller
from .actions import RETRY_AFTER
from .attendance import Attendance, Refused
from .audio import CallAudio
from .book import CallBook
from .call import Call, Phase, Step, clog
from .lobby import Lobby
from .menuentry import MenuEntry
from .settings import CallSettings
from .signalling import Responder, Signalling
from .version import classify


class Joining:
    """Takes new INVITEs into their meetings; one instance per daemon."""

    def __init__(
        self,
        endpoint: Endpoint,
        book: CallBook,
        settings: CallSettings,
        *,
        attendance: Attendance,
        audio: CallAudio,
        signal: Signalling,
        respond: Responder,
        lobby: Lobby,
        menu_entry: MenuEntry,
        flush: Callable[[], None],
        spawn: Callable[[Awaitable[object]], None],
    ) -> None:
        self._endpoint = endpoint
        self._book = book
        self._attendance = attendance
        self._audio = audio
        self._signal = signal
        self._respond = respond
        self._lobby = lobby
        self._menu_entry = menu_entry
        self.settings = settings
        self._flush = flush
        self._spawn = spawn
        self._session_ids = itertools.count(1)
        self._joining = 0  # calls between INVITE and the conference's answer

    def on_invite(
        self, rid: int, request: Request, now: float, caller: Caller, source: str
    ) -> None:
        """A new INVITE from an allowed caller, while the bridge takes calls."""
        uri = request.uri
        user = uri.user if isinstance(uri, SipUri) else None
        menu = self.settings.is_menu(user)
        # A menu call has no space until the caller keys one (docs/calls.md).
        space_id = "" if menu else self.settings.route(user)
        if space_id is None:
            self._endpoint.respond(rid, 404, "Unknown Space", now=now)
            return
        if self._joining >= self.settings.max_joining:
            # Admission control: a flood of INVITEs must not queue unbounded conference work
            # ahead of the calls already in progress; refusing costs almost nothing.
            self._endpoint.respond(rid, 503, "Too Many Calls Joining", now=now, headers=RETRY_AFTER)
            return
        try:
            offer = sdp.parse_sdp(request.body) if request.body else None
        except RemoteProtocolError as exc:
            self._endpoint.respond(rid, exc.status_hint, exc.reason, now=now)
            return
        version = request.headers.get(self.settings.version_header)
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
            methods=infopackage.with_listed(
                self.settings.methods(generation, request.headers.get("user-agent")),
                infopackage.listed(request) or False,
            ),
            request_id=rid,
            offer=offer,
            session_id=next(self._session_ids),
        )
        self._book.calls[call.call_id] = call
        clog(call).info("call offered", attendee=call.display_name, menu=menu)
        self._joining += 1
        origin = self.settings.origin(request, source)
        self._spawn(
            self._menu_entry.answer(call, origin, ready=self._joined) if menu else self._join(call)
        )

    def _joined(self) -> None:
        self._joining -= 1

    async def _join(self, call: Call) -> None:
        try:
            if self._audio.relaying and not await self._audio.open(call):
                # Every port block carries a call: a new one would have no audio.
                self._book.refuse(
                    call, 503, "Media Ports Exhausted", "no free media ports", headers=RETRY_AFTER
                )
                return
            await self.enter(call)
        finally:
            self._joined()

    async def enter(self, call: Call) -> None:
        """Join the call's space's meeting: answer the INVITE, or the lobby; a menu's call is
        answered already."""
        try:
            admitted, endpoint = await self._attendance.join(call, media=self._audio.offer(call))
        except Refused as no:
            if call.dialog is None:
                self._book.refuse(
                    call,
                    no.status,
                    no.reason,
                    no.why,
                    headers=no.headers,
                    reason_text=no.reason_text,
                )
            else:  # answered by the menu: goodbye, then BYE saying why
                self._menu_entry.refused(call, no)
            return
        assert call.attendee_id is not None
        self._book.by_attendee[call.attendee_id] = call
        self._audio.connect(call, endpoint)
        if call.ended:  # hung up while joining: the attendee it became leaves again
            self._spawn(self._attendance.leave(call))
        elif call.request_id is None and call.phase is not Phase.MENU:  # cancelled
            self._book.end(call, "cancelled")
        elif admitted:
            await self.admit(call)
        else:
            await self._lobby.wait(call)

    async def admit(self, call: Call) -> None:
        """Answer the INVITE: muted from the first answer if the server says so (no audio leaks)."""
        if call.phase is Phase.MENU:
            # Answered by the menu with sendrecv: a re-offer follows if the server mutes it.
            call.advance(Step.JOIN)
            self._audio.admitted(call)
            clog(call).info("call joined", audio=call.state.audio)
            self._signal.reconcile(call)
            return
        if call.media is None:
            await self._audio.open(call)  # the shared anchor: always a port
        if call.request_id is None or call.ended:
            return
        call.advance(Step.ANSWER)  # admitted, or answered in the lobby with inactive media
        rid, call.request_id = call.request_id, None
        if not call.waiting:
            call.cancel_timers()
            self._audio.admitted(call)
        try:
            if call.early_sdp is not None:
                # Our early media's SDP is the answer: the 200 repeats it; a re-offer follows if
                # the server's state differs from what it says (sendonly).
                local, call.early_sdp = call.early_sdp, None
                self._audio.update(call)
            else:
                local = self._signal.describe(call, call.offer)
        except RemoteProtocolError as exc:
            self._respond(rid, exc.status_hint, exc.reason)
            self._book.end(call, "no common codec")
            self._flush()
            return
        # Answered: re-offers build on our own last SDP; the phone's parsed offer is ~1 KiB a call.
        call.offer = None
        call.dialog = self._respond(rid, 200, headers=infopackage.RECV_INFO_HEADER, body=local)
        if call.dialog is None:
            self._book.end(call, "cancelled")
        else:
            self._book.by_dialog[call.dialog] = call
            clog(call).info("call answered", audio=call.state.audio)
        self._flush()


def _user_of(request: Request) -> str:
    uri = request.from_.uri
    return uri.user or "phone" if isinstance(uri, SipUri) else "phone"
