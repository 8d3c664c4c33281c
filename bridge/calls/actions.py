"""What a phone asks in its call (re-INVITEs, INFO keys, JSON requests) and the conference commands
that its actions and the server's events lead to, performed one call at a time and in order
(docs/behaviour.md, Phone to server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, assert_never

import structlog

from ..conference.client.client import SpacesClient
from ..conference.client.errors import PreventUnmuting, SpacesError, is_refusal
from ..conference.wire import PHONE
from ..ops.metrics import Metrics
from ..sip import Endpoint, RemoteProtocolError, Request, bodies, offer_answer, sdp
from . import infopackage, policy
from .call import Call, Phase, Unreachable, clog
from .settings import CallSettings
from .signalling import Responder, Signalling

log = structlog.get_logger("bridge.calls")

ACCEPT_INFO = (bodies.DTMF_RELAY, bodies.DTMF, infopackage.CONTENT_TYPE)
ATTENDEE_TYPE = PHONE
RETRY_AFTER = (("Retry-After", "30"),)


class Actions:
    def __init__(
        self,
        endpoint: Endpoint,
        client: SpacesClient,
        signal: Signalling,
        settings: CallSettings,
        *,
        clock: Callable[[], float],
        flush: Callable[[], None],
        spawn: Callable[[Awaitable[object]], None],
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._endpoint = endpoint
        self._answer = Responder(endpoint, clock)
        self._client = client
        self._signal = signal
        self.settings = settings
        self._clock = clock
        self._flush = flush
        self._spawn = spawn
        self.on_menu_key: Callable[[Call, str, str], None] | None = None
        """Where the keys of a call in the voice menu go (``bridge.calls.dialin``)."""

    def on_info(self, call: Call, rid: int, request: Request, now: float) -> None:
        """INFO in the call: DTMF keys or a JSON request; 469/415/400 for what we cannot read."""
        call.action_at = now
        package = request.headers.get("info-package")
        if package is not None and package.strip().lower() != infopackage.PACKAGE:
            # RFC 6086 §4.2.2: the 469 says which packages we do take.
            headers = infopackage.RECV_INFO_HEADER
            self._endpoint.respond(rid, 469, "Bad Info Package", now=now, headers=headers)
            return
        ctype = (request.content_type or "").partition(";")[0].strip().lower()
        if ctype not in ACCEPT_INFO:
            accept = (("Accept", ", ".join(ACCEPT_INFO)),)
            self._endpoint.respond(rid, 415, now=now, headers=accept)
            return
        try:
            if ctype == infopackage.CONTENT_TYPE:
                item = infopackage.parse_request(request.body)
                self._spawn(self._json_request(call, rid, item))
            else:
                key = bodies.parse_dtmf(request.body, ctype)
                self._on_key(call, rid, key.digit)
        except RemoteProtocolError as exc:
            self._endpoint.respond(rid, exc.status_hint, exc.reason, now=now)

    def on_reinvite(self, call: Call, rid: int, request: Request, now: float) -> None:
        """A re-INVITE in the call: hold, resume or a mute wish in its SDP; answered once done."""
        try:
            offer = sdp.parse_sdp(request.body) if request.body else None
        except RemoteProtocolError as exc:
            self._endpoint.respond(rid, exc.status_hint, exc.reason, now=now)
            return
        commands: list[policy.Command] = []
        call.action_at = now
        listed = infopackage.listed(request)
        if listed is not None:  # a target refresh may change the packages (RFC 6086 §5.2.3)
            call.methods = infopackage.with_listed(call.methods, listed)
        if offer is not None:
            audio = _first(offer, "audio")
            if audio is None:
                self._endpoint.respond(rid, 488, "No Audio Stream", now=now)
                return
            video = _first(offer, "video")
            held = offer_answer.is_hold(offer)
            resumed = call.state.held and not held
            commands = policy.on_offer(
                call.state,
                offer.direction_of(audio),
                held=held,
                video=offer.direction_of(video) if video is not None else None,
            )
            if held or resumed:
                clog(call).info("hold" if held else "resume")

        async def answer() -> None:
            await self.perform(call, commands)
            try:
                local = self._signal.describe(call, offer)
            except RemoteProtocolError as exc:
                self._answer(rid, exc.status_hint, exc.reason)
                self._flush()
                return
            self._answer(rid, 200, headers=infopackage.RECV_INFO_HEADER, body=local)
            self._flush()

        self._spawn(answer())

    def on_rtp_key(self, call: Call, digit: str) -> None:
        """A key the phone pressed as an RFC 4733 event: the same sequences and debounce as INFO
        keys, with no request to answer."""
        if not call.ended:
            self._on_key(call, None, digit, source="rtp")

    def _on_key(self, call: Call, rid: int | None, digit: str, *, source: str = "info") -> None:
        """One key; ``rid`` is the INFO that carried it (answered once the key is handled)."""
        if call.phase is Phase.MENU and self.on_menu_key is not None:
            # Before the log line: a menu's keys are meeting IDs and PINs, never logged.
            self.on_menu_key(call, digit, source)
            if rid is not None:
                self._answer(rid, 200)
                self._flush()
            return
        clog(call).info("dtmf", digit=digit, source=source)
        if call.keys is None:
            call.keys = policy.KeyBuffer()
        sequence = policy.on_digit(call.keys, digit, self._clock(), self.settings.keys)
        if sequence is None:
            if rid is not None:
                self._answer(rid, 200)
            return
        commands = policy.on_keys(call.state, sequence, self.settings.keys)
        clog(call).info("key sequence", sequence=sequence)
        if rid is None:
            call.action_at = self._clock()  # an INFO's arrival set it already

        async def run() -> None:
            try:
                await self.perform(call, commands, by_key=True, strict=True, reconcile=False)
            except Unreachable:
                if rid is not None:
                    self._answer(rid, 503, "Conference Unavailable", headers=RETRY_AFTER)
            else:
                if rid is not None:
                    self._answer(rid, 200)
            self._flush()
            self._signal.reconcile(call)

        self._spawn(run())

    async def _json_request(self, call: Call, rid: int, item: infopackage.JsonRequest) -> None:
        """200 applied, 403 refused by policy, 503 unreachable; the body says it too
        (docs/behaviour.md, Phone to server)."""
        match item:
            case infopackage.MediaStateRequest(audio=audio, video=video):
                commands: list[policy.Command] = []
                if audio is not None:
                    commands += policy.on_unmute_request(call.state, audio)
                if video is not None and video != call.state.video:
                    commands.append(policy.SetMedia(video=video))
            case infopackage.RaiseHandRequest():
                commands = [policy.RaiseHand()]
            case infopackage.LowerHandRequest():
                commands = [policy.LowerHand()]
            case _:
                assert_never(item)
        status: Literal["ok", "denied", "failed"] = "ok"
        reason: str | None = None
        code = 200
        try:
            refused = await self.perform(call, commands, strict=True, reconcile=False)
        except Unreachable:
            status, reason, code = "failed", "conference unreachable", 503
        else:
            if refused:
                status, reason, code = "denied", "unmute denied", 403
        headers = RETRY_AFTER if code == 503 else ()
        body = infopackage.encode_reply(item.id, status, reason)
        self._answer(rid, code, headers=headers, body=body, content_type=infopackage.CONTENT_TYPE)
        self._flush()
        self._signal.reconcile(call)

    async def perform(
        self,
        call: Call,
        commands: list[policy.Command],
        *,
        by_key: bool = False,
        strict: bool = False,
        reconcile: bool = True,
    ) -> bool:
        """Run ``commands`` in order for ``call``; True if an unmute was refused by policy.

        ``strict`` raises :class:`Unreachable` when the server could not be reached (the phone's
        request then gets 503); otherwise that is logged and the state stays as the server last said.
        ``reconcile`` false leaves the re-offer to the caller, who answers the phone's request first.
        """
        refused = False
        async with call.lock:
            queue = list(commands)
            while queue:
                command = queue.pop(0)
                if call.ended or call.meeting_id is None or call.attendee_id is None:
                    return refused
                try:
                    await self._command(call, command)
                except PreventUnmuting:
                    refused = True
                    queue += policy.unmute_refused(call.state, by_key=by_key)
                    clog(call).info("unmute refused", hand=call.state.hand.value)
                except SpacesError as exc:
                    # A refusal (4xx) is the server's answer; a 5xx is a failure like a timeout,
                    # and the phone is told to try again later rather than that it was done.
                    if is_refusal(exc):
                        clog(call).warning("conference refused", error=str(exc))
                        continue
                    clog(call).warning("conference unreachable", error=str(exc))
                    if strict:
                        raise Unreachable(str(exc)) from exc
        if reconcile:
            self._signal.reconcile(call)
        return refused

    async def _command(self, call: Call, command: policy.Command) -> None:
        assert call.meeting_id is not None and call.attendee_id is not None
        space, meeting, attendee = call.space_id, call.meeting_id, call.attendee_id
        if call.action_at is not None and not isinstance(command, policy.Notify):
            if self._metrics is not None:
                self._metrics.relay_to_conference.observe(self._clock() - call.action_at)
            call.action_at = None
        match command:
            case policy.SetMedia(audio=audio, video=video, held=held):
                result = await self._client.set_media_state(
                    space, meeting, ATTENDEE_TYPE, attendee, audio=audio, video=video, held=held
                )
                call.state.audio = result.media_state.audio
                call.state.video = result.media_state.video
            case policy.RaiseHand():
                await self._client.raise_hand(space, meeting, attendee, ATTENDEE_TYPE)
            case policy.LowerHand():
                await self._client.lower_hand(space, meeting, attendee, ATTENDEE_TYPE)
            case policy.MuteAll():
                await self._client.mute_all(space, meeting, initiator=attendee)
            case policy.Notify():
                self._signal.notify(call, command)
            case _:
                assert_never(command)


def _first(offer: sdp.SessionDescription, kind: str) -> sdp.MediaDescription | None:
    return next((m for m in offer.media if m.media == kind and not m.rejected), None)
