"""Callers waiting in the lobby (docs/behaviour.md, Lobby): the request to a moderator, what the
phone hears or sees while it waits (ringing, early media with the waiting prompt, an answer with
inactive media, or the menu's prompt), the lobby's bounds, and the moderator's decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..conference.client.client import SpacesClient
from ..conference.client.errors import SpacesError
from ..sip import RemoteProtocolError
from . import policy
from .actions import ATTENDEE_TYPE, RETRY_AFTER
from .audio import CallAudio
from .book import CallBook
from .call import Call, Phase, Step, clog
from .protocols import Cancellable
from .settings import CallSettings
from .signalling import Responder, Signalling


class Lobby:
    """Every call waiting for a moderator; one instance per daemon."""

    def __init__(
        self,
        client: SpacesClient,
        book: CallBook,
        settings: CallSettings,
        *,
        audio: CallAudio,
        signal: Signalling,
        respond: Responder,
        flush: Callable[[], None],
        spawn: Callable[[Awaitable[object]], None],
        later: Callable[[float, Callable[[], None]], Cancellable],
        admit: Callable[[Call], Awaitable[None]],
        resync: Callable[[Call], Awaitable[None]],
    ) -> None:
        """``admit(call)`` answers the INVITE (or joins the menu's call); ``resync(call)`` reads
        the call's state from the server and signals it."""
        self._client = client
        self._book = book
        self._audio = audio
        self._signal = signal
        self._respond = respond
        self.settings = settings
        self._flush = flush
        self._spawn = spawn
        self._later = later
        self._admit = admit
        self._resync = resync

    async def wait(self, call: Call) -> None:
        """Ring (re-sent so proxies keep the call) until a moderator decides or time runs out
        (docs/behaviour.md, Lobby)."""
        assert call.meeting_id is not None and call.attendee_id is not None
        waiting = sum(1 for c in self._book.in_space(call.space_id) if c.waiting)
        if waiting >= self.settings.lobby_limit:
            # A bound on what strangers can make the bridge hold; they may try again later.
            why = f"{waiting} callers already wait in the lobby"
            self._book.refuse(call, 480, "Lobby Full", why, headers=RETRY_AFTER)
            return
        try:
            await self._client.request_permission(
                call.space_id, call.meeting_id, call.attendee_id, ATTENDEE_TYPE
            )
        except SpacesError as exc:
            self._book.refuse(call, 503, "Conference Unavailable", str(exc), headers=RETRY_AFTER)
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
                call.add_timer(self._later(self.settings.ringing_interval, ring))

        def give_up() -> None:
            if call.waiting:
                why = "nobody admitted the caller in time"
                if call.request_id is not None:
                    self._book.refuse(call, 480, "Lobby Timeout", why)
                else:
                    self._book.hang_up(call, why, reason=(480, "Lobby Timeout"))

        call.add_timer(self._later(self.settings.lobby_timeout, give_up))
        if menu:
            # Answered by the menu: the caller hears the waiting prompt where it is.
            self._signal.notify(call, policy.Notify("lobby", "waiting"))
            self._audio.lobby(call)
        elif self.settings.lobby_answer:
            # The variant for phones and proxies that give up on long ringing: answer now with
            # the media inactive, and re-offer once a moderator admits the caller.
            await self._admit(call)
            self._signal.notify(call, policy.Notify("lobby", "waiting"))
        elif self._audio.early_answer(call) and call.request_id is not None:
            # Early media (183 with our SDP, RFC 3960's gateway model): the caller hears the
            # waiting prompt instead of ringing. The 200 repeats this SDP (RFC 3261 §13.2.1).
            try:
                call.early_sdp = self._signal.describe(call, call.offer, early=True)
            except RemoteProtocolError as exc:
                self._book.refuse(call, exc.status_hint, exc.reason, "no common codec")
                return
            status = 183

            def early() -> None:
                if call.request_id is not None and call.waiting:
                    self._respond(call.request_id, status, body=call.early_sdp or b"")
                    self._flush()
                    call.add_timer(self._later(self.settings.ringing_interval, early))

            early()
            self._audio.lobby(call)
        else:
            ring()

    def decide(self, attendee_id: str, state: str) -> None:
        """A moderator's decision on the attendee's request to join (``GRANTED``, ``REJECTED``)."""
        call = self._book.by_attendee.get(attendee_id)
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
                self._book.refuse(call, 603, "Decline", why, reason_text="Guest denied")
            else:
                self._signal.notify(call, policy.Notify("lobby", "denied"))
                self._book.hang_up(call, why, reason=(603, "Guest denied"))

    async def _admitted(self, call: Call) -> None:
        # Admission may have muted the caller (mute on entry); read the state it starts with.
        await self._resync(call)
        if call.dialog is None:
            await self._admit(call)
        else:
            self._audio.admitted(call)  # a menu's caller heard the waiting prompt
            self._signal.reconcile(call)
