"""Calls into a local, in-memory space: the SIP behaviour of the bridge without a conference server.

Every call is answered with an SDP answer from the media anchor, re-INVITEs are answered by the
offer/answer rules, INFO and OPTIONS are answered, and a draining bridge refuses new calls with 503.
The conference-backed call layer replaces the roster here with the Spaces meeting.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, assert_never

import structlog

from ..config import LocalConfig
from ..sip import bodies, sdp
from ..sip.dialog import DialogId
from ..sip.endpoint import Endpoint
from ..sip.errors import LocalProtocolError, RemoteProtocolError
from ..sip.events import (
    DialogConfirmed,
    DialogTerminated,
    Event,
    GlareRetryDue,
    InviteCancelled,
    MessageRejected,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Retransmission,
)
from ..sip.message import Request
from ..sip.uri import SipUri
from .version import Generation, classify

log = structlog.get_logger("bridge.calls")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"
ACCEPT_INFO = frozenset({bodies.DTMF_RELAY, bodies.DTMF, bodies.SPACES_JSON})


class MediaPort(Protocol):
    @property
    def port(self) -> int: ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Media(Protocol):
    """The media anchor, as the call layer uses it."""

    async def allocate(self, host: str) -> MediaPort: ...

    def release(self, port: MediaPort) -> None: ...


@dataclass(slots=True)
class Call:
    """One phone in the local space: plain data."""

    call_id: str
    space: str
    display_name: str
    generation: Generation
    request_id: int | None = None
    dialog: DialogId | None = None
    media: MediaPort | None = None
    session_id: int = 0
    session_version: int = 0
    local_sdp: sdp.SessionDescription | None = None
    held: bool = False
    digits: list[str] = field(default_factory=list)
    timers: list[Cancellable] = field(default_factory=list)


class LocalCalls:
    """Turns endpoint events into answers; one instance per daemon."""

    def __init__(
        self,
        endpoint: Endpoint,
        media: Media,
        *,
        media_host: str,
        version_header: str,
        clock: Callable[[], float],
        flush: Callable[[], None],
        spawn: Callable[[Awaitable[None]], None],
        later: Callable[[float, Callable[[], None]], Cancellable],
        waiting: LocalConfig | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._media = media
        self._media_host = media_host
        self._version_header = version_header
        self._clock = clock
        self._flush = flush
        self._spawn = spawn
        self._later = later
        self._waiting = waiting or LocalConfig()
        self._calls: dict[str, Call] = {}  # by Call-ID
        self._by_dialog: dict[DialogId, Call] = {}
        self._session_ids = itertools.count(1)
        self.draining = False

    @property
    def active(self) -> int:
        return len(self._by_dialog)

    def roster(self, space: str) -> list[Call]:
        return [c for c in self._calls.values() if c.space == space]

    # -- events ----------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        match event:
            case RequestReceived(request_id=rid, request=request, dialog=dialog):
                self._on_request(rid, request, dialog)
            case InviteCancelled(request=request):
                self._drop(request.call_id, "cancelled")
            case DialogConfirmed(dialog=dialog):
                call = self._by_dialog.get(dialog)
                if call is not None:
                    log.info("call confirmed", call_id=call.call_id, space=call.space)
            case DialogTerminated(dialog=dialog, reason=reason):
                call = self._by_dialog.pop(dialog, None)
                if call is not None:
                    self._drop(call.call_id, reason.value)
            case ResponseReceived() | RequestFailed() | GlareRetryDue():
                pass  # the local space sends nothing but BYE, whose outcome needs no action
            case MessageRejected(source=source, reason=reason, status=status):
                log.info("message rejected", source=str(source), reason=reason, status=status)
            case Retransmission():
                pass
            case _:
                assert_never(event)

    def _on_request(self, rid: int, request: Request, dialog: DialogId | None) -> None:
        method = request.method
        now = self._clock()
        if method == "OPTIONS":
            self._endpoint.respond(
                rid,
                200,
                now=now,
                headers=(
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Supported", ""),
                ),
            )
        elif method == "INVITE" and dialog is None:
            self._on_invite(rid, request, now)
        elif method == "INVITE" and dialog is not None:
            self._on_reinvite(rid, request, dialog)
        elif method == "INFO":
            self._on_info(rid, request, now)
        else:
            self._endpoint.respond(rid, 405, now=now, headers=(("Allow", ALLOW),))

    def _on_invite(self, rid: int, request: Request, now: float) -> None:
        if self.draining:
            self._endpoint.respond(
                rid, 503, "Shutting Down", now=now, headers=(("Retry-After", "30"),)
            )
            return
        uri = request.uri
        space = uri.user if isinstance(uri, SipUri) and uri.user else "default"
        offer = None
        if request.body:
            try:
                offer = sdp.parse_sdp(request.body)
            except RemoteProtocolError as exc:
                self._endpoint.respond(rid, exc.status_hint, exc.reason, now=now)
                return
        call = Call(
            call_id=request.call_id,
            space=space,
            display_name=request.from_.display_name or _user_of(request),
            generation=classify(request.headers.get(self._version_header)),
            request_id=rid,
            session_id=next(self._session_ids),
        )
        self._calls[call.call_id] = call
        log.info(
            "call offered",
            call_id=call.call_id,
            space=space,
            attendee=call.display_name,
            version=call.generation.value,
        )
        if space in self._waiting.waiting_spaces:
            self._wait(call, rid, offer)
        else:
            self._spawn(self._answer(call, offer))

    def _wait(self, call: Call, rid: int, offer: sdp.SessionDescription | None) -> None:
        """Keep the caller ringing (180, re-sent periodically) until CANCEL or the lobby timeout."""

        def ring() -> None:
            if call.request_id is None or self._calls.get(call.call_id) is not call:
                return
            self._respond_safely(rid, 180, None, self._clock())
            self._flush()
            call.timers.append(self._later(self._waiting.ringing_interval_seconds, ring))

        def give_up() -> None:
            if call.request_id is None or self._calls.get(call.call_id) is not call:
                return
            call.request_id = None
            self._respond_safely(rid, 480, "Lobby Timeout", self._clock())
            self._drop(call.call_id, "lobby timeout")
            self._flush()

        ring()
        call.timers.append(self._later(self._waiting.lobby_timeout_seconds, give_up))
        log.info("caller waiting", call_id=call.call_id, space=call.space)

    async def _answer(self, call: Call, offer: sdp.SessionDescription | None) -> None:
        port = await self._media.allocate(self._media_host)
        if call.request_id is None or self._calls.get(call.call_id) is not call:
            self._media.release(port)  # cancelled while the port was being opened
            return
        call.media = port
        rid, call.request_id = call.request_id, None
        now = self._clock()
        try:
            local = self._describe(call, offer)
        except RemoteProtocolError as exc:
            self._drop(call.call_id, "no common codec")
            self._respond_safely(rid, exc.status_hint, exc.reason, now)
            return
        call.dialog = self._respond_safely(rid, 200, None, now, local.encode())
        if call.dialog is None:
            self._drop(call.call_id, "cancelled")
        else:
            self._by_dialog[call.dialog] = call
        self._flush()

    def _on_reinvite(self, rid: int, request: Request, dialog: DialogId) -> None:
        call = self._by_dialog.get(dialog)
        now = self._clock()
        if call is None:
            self._endpoint.respond(rid, 481, now=now)
            return
        offer = None
        if request.body:
            try:
                offer = sdp.parse_sdp(request.body)
            except RemoteProtocolError as exc:
                self._endpoint.respond(rid, exc.status_hint, exc.reason, now=now)
                return
        try:
            local = self._describe(call, offer)
        except RemoteProtocolError as exc:
            self._endpoint.respond(rid, exc.status_hint, exc.reason, now=now)
            return
        held = offer is not None and sdp.is_hold(offer)
        if held != call.held:
            call.held = held
            log.info("hold" if held else "resume", call_id=call.call_id, space=call.space)
        self._endpoint.respond(
            rid, 200, now=now, body=local.encode(), content_type="application/sdp"
        )

    def _on_info(self, rid: int, request: Request, now: float) -> None:
        ctype = request.content_type
        if ctype not in ACCEPT_INFO:
            self._endpoint.respond(
                rid, 415, now=now, headers=(("Accept", ", ".join(sorted(ACCEPT_INFO))),)
            )
            return
        try:
            if ctype == bodies.SPACES_JSON:
                bodies.parse_json_request(request.body)
            else:
                key = bodies.parse_dtmf(request.body, ctype)
                call = self._calls.get(request.call_id)
                if call is not None:
                    call.digits.append(key.digit)
                    log.info("dtmf", call_id=call.call_id, space=call.space, digit=key.digit)
        except RemoteProtocolError as exc:
            self._endpoint.respond(rid, exc.status_hint, exc.reason, now=now)
            return
        self._endpoint.respond(rid, 200, now=now)

    # -- helpers -----------------------------------------------------------------------------------
    def _describe(self, call: Call, offer: sdp.SessionDescription | None) -> sdp.SessionDescription:
        """Our SDP: an answer to ``offer``, or our own offer when the request carried none."""
        assert call.media is not None
        call.session_version += 1
        ports = {"audio": call.media.port, "video": call.media.port + 2}
        if offer is None:
            local = sdp.build_offer(
                local_address=self._media_host,
                ports=ports,
                session_id=call.session_id,
                session_version=call.session_version,
                previous=call.local_sdp,
            )
        else:
            local = sdp.build_answer(
                offer,
                local_address=self._media_host,
                ports=ports,
                session_id=call.session_id,
                session_version=call.session_version,
            )
        call.local_sdp = local
        return local

    def _respond_safely(
        self, rid: int, status: int, reason: str | None, now: float, body: bytes = b""
    ) -> DialogId | None:
        try:
            return self._endpoint.respond(
                rid,
                status,
                reason,
                now=now,
                body=body,
                content_type="application/sdp" if body else None,
            )
        except LocalProtocolError:
            return None  # the request was cancelled meanwhile; the endpoint already answered 487

    def _drop(self, call_id: str, why: str) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        if call.dialog is not None:
            self._by_dialog.pop(call.dialog, None)
        for timer in call.timers:
            timer.cancel()
        call.timers.clear()
        if call.media is not None:
            self._media.release(call.media)
            call.media = None
        log.info("call ended", call_id=call_id, space=call.space, reason=why)

    def refuse_new_calls(self) -> None:
        """First step of a drain: new INVITEs get 503 from now on."""
        self.draining = True

    def drain(self) -> int:
        """Refuse waiting callers and hang up every established call; returns how many got BYE."""
        self.draining = True
        now = self._clock()
        for call in list(self._calls.values()):
            if call.request_id is not None:  # still waiting: refuse rather than hang up
                rid, call.request_id = call.request_id, None
                self._respond_safely(rid, 503, "Shutting Down", now)
                self._drop(call.call_id, "shutdown")
        dialogs = list(self._by_dialog)
        for dialog in dialogs:
            if self._endpoint.dialog(dialog) is not None:
                self._endpoint.bye(dialog, now=now)
        self._flush()
        return len(dialogs)


def _user_of(request: Request) -> str:
    uri = request.from_.uri
    return uri.user or "phone" if isinstance(uri, SipUri) else "phone"
