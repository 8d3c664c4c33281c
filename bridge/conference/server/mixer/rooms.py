"""What the media plane knows of its rooms and participants (:mod:`.plane`): plain data, and the
callbacks through which it tells the server what Janus did. A participant is a phone (plain RTP,
where the bridge takes its audio) or a browser (WebRTC, negotiated by the server on its behalf).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ...wire import MediaEndpoint, MediaOffer
from .audiobridge import CODECS, OPUS

EndpointChanged = Callable[[str, str, MediaEndpoint], Awaitable[None]]
"""``(meeting_id, attendee_id, endpoint)``: where a re-joined phone's audio now goes."""
Talking = Callable[[str, str, bool], Awaitable[None]]
"""``(meeting_id, attendee_id, talking)``: Janus's talking events, once per change."""
BrowserLost = Callable[[str, str, str], Awaitable[None]]
"""``(meeting_id, attendee_id, reason)``: a browser's PeerConnection is gone (hung up, failed
ICE or DTLS, a lost session or a restarted Janus); it is not in the mix any more."""
BrowserCandidate = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""``(meeting_id, attendee_id, candidate)``: one of Janus's own ICE candidates, when it trickles
them (``full_trickle``); by default they are all in its answer."""


def choose_codec(codecs: Iterable[str]) -> str:
    """The first of the offer's codecs AudioBridge takes."""
    for codec in codecs:
        if codec.upper() in CODECS:
            return codec.upper()
    raise ValueError(f"no G.711 codec among {list(codecs)}")


@dataclass(eq=False)
class Member:
    """A participant of the plane's: a phone (``offer``: where the bridge takes its audio, plain
    RTP) or a browser (``offer`` None: WebRTC, negotiated by the server on its behalf)."""

    attendee_id: str
    display_name: str
    muted: bool
    offer: MediaOffer | None = None
    codec: str = OPUS
    participant: int = 0
    handle: int | None = None
    endpoint: MediaEndpoint | None = None
    generation: int = -1
    """The session it joined in: a participant of an older one is not in Janus any more."""
    talking: bool = False
    """Janus's last word on it (browsers only: 1.1.2 computes it from their RTP)."""
    joined_at: float = 0.0

    @property
    def browser(self) -> bool:
        return self.offer is None


@dataclass(eq=False)
class Room:
    """One meeting's AudioBridge room and who the plane has in it."""

    meeting_id: str
    room: int
    members: dict[str, Member] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held across a room's requests, so that a join, a mute and a removal apply in order."""
    generation: int = -1
    ended: bool = False
