"""Telling the phone: our SDP (answers and re-offers) and INFO events (docs/behaviour.md, Server to
phone).

What the phone was told is one bit per call, our SDP's audio direction; :meth:`Signalling.reconcile`
re-offers until it equals the server's state, one offer at a time, so that changes arriving meanwhile
coalesce into the next offer.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ..ops.metrics import Metrics
from ..sip import DialogId, Endpoint, LocalProtocolError, offer_answer, sdp
from . import infopackage, policy
from .audio import ACCEPT, PTIME, CallAudio, relay_ports
from .call import Call, Phase, Step, clog
from .settings import CallSettings

log = structlog.get_logger("bridge.calls")

#: Distinct re-offer shapes kept for sharing: one per kind of phone and codec choice.
SHAPES_KEPT = 256


class Signalling:
    def __init__(
        self,
        endpoint: Endpoint,
        settings: CallSettings,
        *,
        clock: Callable[[], float],
        flush: Callable[[], None],
        metrics: Metrics | None = None,
        audio: CallAudio | None = None,
    ) -> None:
        self._metrics = metrics
        self.audio = audio
        """The call's relay: set up by each answer, its gates moved by every reconcile."""
        self._endpoint = endpoint
        self.settings = settings
        self._clock = clock
        self._flush = flush
        self._shapes: dict[tuple[sdp.MediaDescription, ...], tuple[sdp.MediaDescription, ...]] = {}

    def notify(self, call: Call, note: policy.Notify) -> None:
        """An INFO JSON event, for endpoints whose signalling methods include ``info``."""
        if call.dialog is None or "info" not in call.methods:
            return
        body = _event_body(note)
        if body is None:
            return
        try:
            self._endpoint.send_in_dialog(
                call.dialog,
                "INFO",
                now=self._clock(),
                # The package only if the phone listed it; else a legacy INFO usage (RFC 6086 §9).
                headers=_PACKAGE if infopackage.NEGOTIATED in call.methods else (),
                body=body,
                content_type=infopackage.CONTENT_TYPE,
            )
        except LocalProtocolError:
            return  # the dialog ended meanwhile
        self._relayed(call)
        self._flush()

    def reconcile(self, call: Call) -> None:
        """Re-offer SDP until the phone was told the server's state (docs/behaviour.md, Server to
        phone). One offer at a time; changes that arrive meanwhile coalesce into the next offer.
        The relay's gates follow the server's state at once, whatever the phone does with the offer."""
        if self.audio is not None and not call.ended:
            self.audio.update(call)
        if (
            call.phase not in (Phase.ADMITTED, Phase.ADMITTED_INACTIVE)
            or call.dialog is None
            or not call.sdp_signalling
            or "sdp" not in call.methods
            or not (policy.needs_offer(call.state) or _lobby_sdp(call))
        ):
            # Nothing to tell the phone: a server event that led here needed no signalling, and
            # must not be timed against a later, unrelated request.
            call.event_at = None
            return
        if (
            call.offer_request is not None
            or call.busy  # the phone's request in progress; its handler reconciles after
            or self._endpoint.invite_pending(call.dialog)
        ):
            return
        local = self.describe(call, None, reoffer=True)
        # This offer carries the current state; until the phone accepts one, the phase keeps saying
        # that its SDP is the lobby's, so a failure (491 included) re-offers.
        call.offering = call.state.audio
        try:
            call.offer_request = self._endpoint.send_in_dialog(
                call.dialog,
                "INVITE",
                now=self._clock(),
                body=local,
                content_type="application/sdp",
            )
        except LocalProtocolError:
            return
        self._relayed(call)
        clog(call).info("mute signalled" if not call.offering else "unmute signalled")
        self._flush()

    def _relayed(self, call: Call) -> None:
        if call.event_at is not None and self._metrics is not None:
            self._metrics.relay_to_phone.observe(self._clock() - call.event_at)
        call.event_at = None

    def on_response(self, call: Call, rid: int, status: int) -> None:
        """The phone's answer to one of our requests in the call's dialog."""
        if call.offer_request != rid or status < 200:
            return
        call.offer_request = None
        if status < 300:
            call.state.signalled_audio = call.offering
            call.advance(Step.OFFER_ACCEPTED)  # the lobby's inactive SDP, if it was, is replaced
        elif status in (488, 501):
            # The phone cannot take re-offers: stop trying for this call (docs/behaviour.md,
            # Server to phone).
            call.sdp_signalling = False
            clog(call).info("sdp signalling disabled", status=status)
        elif status in (408, 481):
            # RFC 3261 §14.1: the dialog is gone or unreachable.
            if call.dialog is not None and self._endpoint.dialog(call.dialog) is not None:
                self._endpoint.bye(call.dialog, now=self._clock())
                self._flush()
            return
        if status != 491:  # 491: the endpoint reports GlareRetryDue after the random wait
            self.reconcile(call)

    def describe(
        self,
        call: Call,
        offer: sdp.SessionDescription | None,
        *,
        reoffer: bool = False,
        early: bool = False,
    ) -> bytes:
        """Our SDP (an answer to ``offer``, or our offer), with the audio direction of the server's
        state, as sent. Except for our own re-offers (recorded when the phone accepts them), it
        records what the SDP tells the phone."""
        assert call.media is not None
        call.session_version += 1
        relayed = relay_ports(call)
        ports = relayed or {"audio": call.media.port, "video": call.media.port + 2}
        direction = policy.wanted_direction(call.state)
        if early:
            # Early media in the lobby (183): sendrecv, because the 200 must repeat this answer
            # (RFC 3261 §13.2.1) and most admitted callers may talk; until then the relay's send
            # gate drops what the phone sends, and a re-INVITE follows if the server mutes it.
            direction = sdp.Direction.SENDRECV
        elif call.phase is Phase.MENU:
            # The menu's caller keys digits, in RTP too: it must be let send (docs/calls.md).
            direction = sdp.Direction.SENDRECV
        elif call.waiting:
            # No media flows in the lobby (docs/behaviour.md, Lobby).
            direction = sdp.Direction.INACTIVE
        elif call.state.held or "sdp" not in call.methods or not call.sdp_signalling:
            # On hold the phone's offer decides (sendonly → recvonly; docs/behaviour.md, SIP
            # surface); what it sends meanwhile ends at the anchor, and the server has it muted.
            direction = sdp.Direction.SENDRECV
        if offer is None:
            local = offer_answer.build_offer(
                local_address=self.settings.media_host,
                ports=ports,
                session_id=call.session_id,
                session_version=call.session_version,
                previous=call.offer_shape,
                audio_direction=direction,
                username=self._endpoint.config.agent,
            )
        else:
            local = offer_answer.build_answer(
                offer,
                local_address=self.settings.media_host,
                ports=ports,
                session_id=call.session_id,
                session_version=call.session_version,
                audio_direction=direction,
                username=self._endpoint.config.agent,
                accept=ACCEPT if relayed else None,
                ptime=PTIME if relayed else None,
            )
            if self.audio is not None:
                self.audio.negotiated(call, offer, local)
        audio = local.audio
        if not reoffer and audio is not None:
            # Our SDP receives from the phone = the phone may send.
            call.state.signalled_audio = audio.direction.receives
        shape = offer_answer.offer_shape(local.media)
        call.offer_shape = self._shapes.get(shape)
        if call.offer_shape is None:
            if len(self._shapes) >= SHAPES_KEPT:
                self._shapes.clear()  # many kinds of phones: start again rather than grow
            call.offer_shape = self._shapes[shape] = shape
        if self.audio is not None:
            self.audio.update(call)
        return local.encode()


def _lobby_sdp(call: Call) -> bool:
    """Our last SDP is the lobby's inactive one, and no offer of ours is replacing it."""
    return call.phase is Phase.ADMITTED_INACTIVE and call.offer_request is None


def _event_body(note: policy.Notify) -> bytes | None:
    match note.kind, note.value:
        case "tracksstatus.change", bool(audio):
            return infopackage.tracksstatus_event(audio=audio, video=note.video)
        case "hand", "raised" | "lowered" | "accepted" as hand:
            return infopackage.hand_event(hand)
        case "muteall", "muting" | "muted" as phase:
            return infopackage.muteall_event(phase)
        case "preventunmuting", bool(enabled):
            return infopackage.preventunmuting_event(enabled=enabled)
        case "lobby", "waiting" | "admitted" | "denied" as lobby:
            return infopackage.lobby_event(lobby)
        case "meeting", "ended":
            return infopackage.meeting_event("ended")
    return None


_PACKAGE = (("Info-Package", infopackage.PACKAGE),)


class Responder:
    """Responds to requests that may have been cancelled meanwhile (the endpoint then already
    answered 487); a body without a type is SDP."""

    def __init__(self, endpoint: Endpoint, clock: Callable[[], float]) -> None:
        self._endpoint = endpoint
        self._clock = clock

    def __call__(
        self,
        rid: int,
        status: int,
        reason: str | None = None,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> DialogId | None:
        if body and content_type is None:
            content_type = "application/sdp"
        try:
            return self._endpoint.respond(
                rid,
                status,
                reason,
                now=self._clock(),
                headers=headers,
                body=body,
                content_type=content_type,
            )
        except LocalProtocolError:
            return None
