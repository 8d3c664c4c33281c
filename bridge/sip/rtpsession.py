"""What an offer/answer exchange settles for one RTP audio stream (RFC 3264 §6, §8; RFC 3551;
RFC 4733 §7): the formats an answerer restricted to some codecs takes, and the peer's RTP address,
payload types and packet time that a media relay needs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from .offer_answer import codec_of
from .sdp import MediaDescription, SessionDescription

TELEPHONE_EVENT = "telephone-event"


def formats_for(codecs: tuple[str, ...]) -> Callable[[MediaDescription], list[str]]:
    """A format chooser for :func:`bridge.sip.offer_answer.build_answer` that answers an audio stream with
    one codec of ``codecs`` (lower-case encoding names) and the offered 8 kHz telephone-events.

    One codec, the first the offer lists among ``codecs`` (the offerer's preference, RFC 3264
    §6.1): a relay that does not transcode must receive what it forwards, and an answer that
    lists several codecs lets the phone switch between them at any packet (§5.1). Other media
    types get no format (rejected)."""
    wanted = frozenset(codecs)

    def choose(m: MediaDescription) -> list[str]:
        if m.media != "audio":
            return []
        codec = next((f for f in m.formats if codec_of(m, f) in wanted), None)
        if codec is None:
            return []
        events = [f for f in m.formats if _is_event(m, f)]
        return [codec, *events]

    return choose


def _is_event(m: MediaDescription, fmt: str) -> bool:
    # RFC 4733 §7.1.1: telephone-event's clock rate must match the audio codec's (8000 for G.711).
    encoding = m.rtpmap(fmt)
    return encoding is not None and encoding.lower().startswith(TELEPHONE_EVENT + "/8000")


@dataclass(frozen=True, slots=True)
class AudioPeer:
    """Where and how the peer receives the audio stream, once offer and answer agree."""

    host: str | None
    """The connection address (IPv4 or IPv6); None when the peer receives nothing (``c=`` of
    0.0.0.0, RFC 3264 §8.4)."""
    port: int
    """RTP port; 0 when the stream is rejected."""
    rtcp_port: int
    """RTCP port: ``a=rtcp`` (RFC 3605), else the next one up (RFC 3550 §11)."""
    codec: str
    """The audio codec's encoding name, upper case (``PCMU``)."""
    payload_type: int
    event_payload_type: int | None
    """RFC 4733 telephone-events' payload type, when both sides took them."""
    ptime: int | None
    """The packet time the peer asked to receive (ms), if it said."""


def audio_peer(peer: SessionDescription, answer: SessionDescription) -> AudioPeer | None:
    """The peer's audio stream from its description ``peer`` (its offer, or its answer to our
    offer) and the ``answer`` of the exchange, which fixes the payload types (RFC 3264 §6.1).
    None when either has no audio stream or the answer took no format."""
    theirs, agreed = peer.audio, answer.audio
    if theirs is None or agreed is None or agreed.rejected or not agreed.formats:
        return None
    codec_format = next((f for f in agreed.formats if not _is_event(agreed, f)), None)
    if codec_format is None or not codec_format.isdigit():
        return None
    codec = codec_of(agreed, codec_format)
    if codec is None:
        return None
    event = next((f for f in agreed.formats if _is_event(agreed, f) and f.isdigit()), None)
    connection = theirs.connection or peer.connection or ""
    host: str | None = connection.rpartition(" ")[2] or None
    if host is not None and not _unicast(host):
        host = None  # no media to it, or a name we would have to resolve: latching will tell
    rtcp_port = theirs.port + 1
    rtcp = theirs.attribute("rtcp")
    if rtcp:
        # a=rtcp:<port> [<nettype> <addrtype> <connection-address>] (RFC 3605 §2.1)
        first = rtcp.split()[0]
        if first.isdigit() and 0 < int(first) < 65536:
            rtcp_port = int(first)
    ptime_text = theirs.attribute("ptime")
    ptime = int(ptime_text) if ptime_text and ptime_text.isdigit() else None
    return AudioPeer(
        host=host,
        port=theirs.port,
        rtcp_port=rtcp_port,
        codec=codec.upper(),
        payload_type=int(codec_format),
        event_payload_type=int(event) if event is not None else None,
        ptime=ptime,
    )


def _unicast(host: str) -> bool:
    """An IP address to send to: not a name, and not 0.0.0.0 or :: ("send nothing", §8.4)."""
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
