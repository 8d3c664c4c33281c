"""A call's audio, as the call layer drives the relay (docs/media.md): the ports it takes before the
join, the phone leg as each offer/answer settles it, the meeting leg the server names, the gates
that follow the server's state, the prompts that tell the phone what happened, and the keys the
phone presses in RTP.

With ``[media] relay = false`` there is no relay: every call shares the anchor's ports, and none of
this runs but the port allocation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ..conference.wire import CODECS, MediaEndpoint, MediaOffer
from ..media.prompts import Prompt
from ..media.relay import MediaLeg, Relay
from ..sip import AudioPeer, audio_peer, formats_for, sdp
from .call import Call, Phase, clog
from .policy import Hand
from .protocols import Cancellable, Media

log = structlog.get_logger("bridge.calls")

ACCEPT = formats_for(tuple(codec.lower() for codec in CODECS))
"""What our answers take with the relay: one G.711 codec and telephone-events (the meeting's mixer
takes nothing else, and the relay does not transcode but between the two G.711 laws)."""
PTIME = 20
"""The packet time we send the phone, whatever it sends us."""
ANSWERED = frozenset({Phase.ADMITTED, Phase.ADMITTED_INACTIVE})


@dataclass(slots=True)
class Heard:
    """What the phone was last told by a prompt, to speak only of changes."""

    audio: bool
    hand: Hand
    held: bool


class CallAudio:
    def __init__(
        self,
        relay: Relay | None,
        anchor: Media | None,
        host: str,
        *,
        prompts: bool,
        later: Callable[[float, Callable[[], None]], Cancellable],
        on_key: Callable[[Call, str], None],
        on_talking: Callable[[Call, bool], None] | None = None,
    ) -> None:
        self.relay = relay
        self._anchor = anchor
        self._host = host
        self._prompts = prompts and relay is not None and relay.prompts is not None
        self._later = later
        self._on_key = on_key
        self._on_talking = on_talking
        self._heard: dict[str, Heard] = {}  # by Call-ID, for calls with a relay leg
        self._silent_meetings: set[str] = set()
        # The join answers before our SDP answer settles the phone leg: the meeting leg waits
        # here (by Call-ID) until it does.
        self._endpoints: dict[str, MediaEndpoint | None] = {}

    @property
    def relaying(self) -> bool:
        return self.relay is not None

    # -- ports -------------------------------------------------------------------------------------
    async def open(self, call: Call) -> bool:
        """Take the call's ports; False when the range is exhausted (the caller answers 503)."""
        if self.relay is not None:
            leg = await self.relay.open()
            if leg is None:
                return False
            leg.on_key = lambda key: self._on_key(call, key)
            if self._on_talking is not None:
                talking = self._on_talking
                leg.on_talking = lambda speaking: talking(call, speaking)
            call.media = leg
            return True
        assert self._anchor is not None
        call.media = await self._anchor.allocate(self._host)
        return True

    def offer(self, call: Call) -> MediaOffer | None:
        """Where the meeting's audio for this call goes, for the join."""
        leg = _leg(call)
        if leg is None:
            return None
        return MediaOffer(self._host, leg.meeting_port, CODECS)

    def close(self, call: Call, why: str) -> None:
        """Release the ports, with a summary line of what the relay carried."""
        media, call.media = call.media, None
        self._heard.pop(call.call_id, None)
        self._endpoints.pop(call.call_id, None)
        if isinstance(media, MediaLeg):
            counters = media.close()
            if counters is not None:
                lost = media.media.lost if media.media is not None else 0
                clog(call).info(
                    "call media",
                    reason=why,
                    from_phone=counters.phone_packets,
                    to_meeting=counters.to_meeting_packets,
                    from_meeting=counters.meeting_packets,
                    to_phone=counters.to_phone_packets,
                    muted=counters.muted,
                    lost=lost,
                    keys=counters.keys,
                    latches=counters.latches,
                    dropped=counters.not_rtp + counters.too_big + counters.stranger,
                )
        elif media is not None and self._anchor is not None:
            self._anchor.release(media)

    # -- the two legs ------------------------------------------------------------------------------
    def negotiated(
        self, call: Call, peer: sdp.SessionDescription, answer: sdp.SessionDescription
    ) -> None:
        """An offer/answer exchange with the phone completed: set the phone leg."""
        leg = _leg(call)
        settled = audio_peer(peer, answer)
        if leg is None or settled is None:
            return
        first = leg.media is None
        _configure(leg, settled, call)
        if first and call.call_id in self._endpoints:
            self.connect(call, self._endpoints.pop(call.call_id))

    def connect(self, call: Call, endpoint: MediaEndpoint | None) -> None:
        """The meeting leg, as the join answer names it (or does not)."""
        leg = _leg(call)
        if leg is None:
            return
        if leg.media is None:  # the phone leg is not set yet: connect once it is
            self._endpoints[call.call_id] = endpoint
            return
        if endpoint is None:
            key = f"{call.space_id}/{call.meeting_id}"
            if key not in self._silent_meetings:
                self._silent_meetings.add(key)
                clog(call).warning(
                    "meeting has no audio: the conference server names no media endpoint; "
                    "keys and prompts still work",
                    meeting=call.meeting_id,
                )
            return
        try:
            leg.connect_meeting(endpoint.host, endpoint.port, endpoint.codec, endpoint.payload_type)
        except OSError as exc:  # the other address family than [media] host: no meeting audio
            clog(call).warning(
                "meeting media endpoint unreachable",
                endpoint=f"{endpoint.host}:{endpoint.port}",
                error=str(exc),
            )

    # -- the gates and prompts -----------------------------------------------------------------------
    def update(self, call: Call) -> None:
        """Open or close the gates from the server's state, and speak of what changed."""
        leg = _leg(call)
        if leg is None or leg.media is None:
            return
        state = call.state
        answered = call.phase in ANSWERED
        leg.set_gates(send=answered and state.audio and not state.held, hear=answered)
        if not answered or not self._prompts:
            return
        heard = self._heard.get(call.call_id)
        if heard is None:
            self._heard[call.call_id] = Heard(state.audio, state.hand, state.held)
            if not state.audio and not state.held:
                leg.play(Prompt.MUTED)  # muted on entry: say so once
            return
        prompt = None
        if state.held or heard.held:
            pass  # the phone holds or just resumed: it was not listening, and knows what it did
        elif state.hand is not heard.hand and state.hand is Hand.RAISED:
            prompt = Prompt.HAND_RAISED
        elif state.hand is not heard.hand and state.hand is Hand.LOWERED:
            prompt = Prompt.HAND_LOWERED
        elif state.audio != heard.audio:
            prompt = Prompt.UNMUTED if state.audio else Prompt.MUTED
        heard.audio, heard.hand, heard.held = state.audio, state.hand, state.held
        if prompt is not None:
            leg.play(prompt)

    def lobby(self, call: Call) -> None:
        """The caller waits: the waiting prompt, again and again with pauses."""
        leg = _leg(call)
        if leg is not None and self._prompts:
            leg.play(Prompt.LOBBY_WAITING, repeat=True)

    def admitted(self, call: Call) -> None:
        leg = _leg(call)
        if leg is not None:
            leg.stop_prompt()

    def farewell(self, call: Call, then: Callable[[], None]) -> None:
        """The meeting ended: say so, then ``then`` (the BYE) once the prompt is over."""
        leg = _leg(call)
        duration = leg.play(Prompt.MEETING_ENDED) if leg is not None and self._prompts else 0.0
        if duration <= 0:
            then()
        else:
            self._later(duration + 0.2, then)

    def say(self, call: Call, prompts: tuple[Prompt, ...]) -> float:
        """Play ``prompts`` in a row in place of what plays (the voice menu); their duration in
        seconds, 0 when nothing can be played."""
        leg = _leg(call)
        return leg.play_all(prompts) if leg is not None and self._prompts else 0.0

    def hush(self, call: Call) -> None:
        """Stop the prompt playing: the caller is keying already."""
        leg = _leg(call)
        if leg is not None:
            leg.stop_prompt()

    def early_answer(self, call: Call) -> bool:
        """Whether lobby callers get 183 with SDP and hear the waiting prompt (relay and prompts on)
        rather than 180 and silence."""
        return self._prompts and isinstance(call.media, MediaLeg)


def _leg(call: Call) -> MediaLeg | None:
    media = call.media
    return media if isinstance(media, MediaLeg) and not media.closed else None


def _configure(leg: MediaLeg, peer: AudioPeer, call: Call) -> None:
    phone = (peer.host, peer.port) if peer.host is not None and peer.port else None
    rtcp = (peer.host, peer.rtcp_port) if phone is not None and peer.host is not None else None
    leg.configure(
        peer.codec,
        peer.payload_type,
        peer.event_payload_type,
        phone,
        rtcp,
        cname=f"{call.attendee_id or call.call_id[:32]}@spaces-bridge",
    )


def relay_ports(call: Call) -> dict[str, int] | None:
    """The ports our SDP offers with the relay (audio only), or None without it."""
    leg = _leg(call)
    return {"audio": leg.port} if leg is not None else None
