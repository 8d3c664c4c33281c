"""A call to a dial-in number (docs/calls.md, "One number for every meeting"): answered with media
for the voice menu, and, once the caller chose a meeting, joined to it in the same call.

The menu itself (its keys, prompts and lookups) is :mod:`bridge.calls.dialin`'s; this module is
the call's way into it and out of it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..sip import RemoteProtocolError
from . import infopackage
from .actions import RETRY_AFTER
from .attendance import Refused
from .audio import CallAudio
from .book import CallBook
from .call import Call, Step
from .dialin import DialInMenus
from .signalling import Responder, Signalling


class MenuEntry:
    """Answers menu calls and enters them into the chosen meeting; one instance per daemon."""

    def __init__(
        self,
        menus: DialInMenus,
        book: CallBook,
        *,
        audio: CallAudio,
        signal: Signalling,
        respond: Responder,
        flush: Callable[[], None],
        spawn: Callable[[Awaitable[object]], None],
        enter: Callable[[Call], Awaitable[None]],
    ) -> None:
        """``enter(call)`` joins the call's space's meeting, like any call's."""
        self._menus = menus
        self._book = book
        self._audio = audio
        self._signal = signal
        self._respond = respond
        self._flush = flush
        self._spawn = spawn
        self._enter = enter

    async def answer(self, call: Call, source: str, *, ready: Callable[[], None]) -> None:
        """A call to a dial-in number: answered with media, then the voice menu (docs/calls.md).
        ``ready()`` is called once the call no longer waits on the server or the relay."""
        try:
            available = await self._menus.probe()
            opened = bool(available) and await self._audio.open(call)
        finally:
            ready()
        if call.ended:  # cancelled meanwhile
            self._audio.close(call, "cancelled")
            return
        if not available:
            if available is None:
                why = "conference server unreachable"
                self._book.refuse(call, 503, "Conference Unavailable", why, headers=RETRY_AFTER)
            else:
                self._book.refuse(call, 404, "Dial-In Unavailable", "the server has no dial-in IDs")
            return
        if not opened:
            why = "no free media ports"
            self._book.refuse(call, 503, "Media Ports Exhausted", why, headers=RETRY_AFTER)
            return
        call.advance(Step.MENU)
        try:
            local = self._signal.describe(call, call.offer)
        except RemoteProtocolError as exc:
            self._book.refuse(call, exc.status_hint, exc.reason, "no common codec")
            return
        assert call.request_id is not None
        rid, call.request_id, call.offer = call.request_id, None, None
        call.dialog = self._respond(rid, 200, headers=infopackage.RECV_INFO_HEADER, body=local)
        self._flush()
        if call.dialog is None:
            self._book.end(call, "cancelled")
            return
        self._book.by_dialog[call.dialog] = call
        self._menus.start(call, source)

    def refused(self, call: Call, no: Refused) -> None:
        """The chosen meeting refused the call, which the menu answered already: goodbye, then
        BYE saying why."""
        self._menus.refused(call, no.why, (no.status, no.reason_text or no.reason))

    def enter(self, call: Call, space_id: str, host: bool) -> None:
        """The menu's caller chose ``space_id`` (as its host when ``host``): join it in the same
        call; the Request-URI stays the menu's."""
        call.space_id, call.logger = space_id, None
        if host:
            call.role, call.state.moderator = "moderator", True
        self._spawn(self._enter(call))
