"""The offer/answer model (RFC 3264) over SDP descriptions (:mod:`bridge.sip.sdp`).

An answer keeps the offerer's codecs where this stack knows them (the caller narrows them with a
format chooser), repeats every offered m-line and rejects what it cannot take with port 0 (§6), and
uses the direction attributes to carry mute and hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .errors import RemoteProtocolError
from .sdp import (
    Attribute,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
    with_direction,
)

#: RTP profiles we answer. Secure profiles need keys (a=crypto, DTLS) that this stack does not
#: negotiate, so such streams are rejected (port 0) rather than faked.
_RTP_PROFILES = frozenset({"RTP/AVP", "RTP/AVPF"})

# Codecs we accept by encoding name (lower case) per media type, and the static audio payload types
# that need no rtpmap (RFC 3551 §6, table 4).
_CODECS = {
    "audio": frozenset({"pcmu", "pcma", "g722", "opus", "telephone-event"}),
    "video": frozenset({"h264", "vp8", "vp9"}),
}
_STATIC_AUDIO = {"0": "pcmu", "8": "pcma", "9": "g722"}

# Our initial offer (no previous SDP): payload type, rtpmap encoding, fmtp. 111 and 101 are the
# dynamic numbers most softphones use, which keeps traces familiar.
_DEFAULT_AUDIO = (
    ("0", "PCMU/8000", None),
    ("8", "PCMA/8000", None),
    ("9", "G722/8000", None),
    ("111", "opus/48000/2", None),
    ("101", "telephone-event/8000", "0-16"),
)

#: The "hold" connection addresses of RFC 2543 (``0.0.0.0``) and its IPv6 spelling seen in the wild.
_NULL_ADDRESSES = frozenset({"0.0.0.0", "::"})  # noqa: S104 (an SDP value, not a bind)


def answer_direction(offered: Direction, local: Direction = Direction.SENDRECV) -> Direction:
    """The answer's direction for an offered one (RFC 3264 §6.1).

    We may send only if the offerer receives, and receive only if it sends; ``local`` narrows further
    (``SENDONLY`` asks the peer not to send). So sendonly → recvonly, recvonly →
    sendonly, inactive → inactive, sendrecv → ``local``.
    """
    return Direction.of(
        sends=offered.receives and local.sends, receives=offered.sends and local.receives
    )


def _null_connection(connection: str | None) -> bool:
    return connection is not None and connection.rpartition(" ")[2] in _NULL_ADDRESSES


def codec_of(m: MediaDescription, fmt: str) -> str | None:
    """The lower-case encoding name of ``fmt`` in ``m``, from rtpmap or the static table."""
    encoding = m.rtpmap(fmt)
    if encoding is not None:
        return encoding.partition("/")[0].lower()
    return _STATIC_AUDIO.get(fmt) if m.media == "audio" else None


def accepted_formats(m: MediaDescription) -> list[str]:
    """The offered formats we take, in the offer's order (the offerer's preference, RFC 3264 §6.1)."""
    known = _CODECS.get(m.media, frozenset())
    chosen = [f for f in m.formats if codec_of(m, f) in known]
    if all(codec_of(m, f) == "telephone-event" for f in chosen):
        return []  # telephone-event alone carries no audio
    return chosen


def _offered_direction(offer: SessionDescription, m: MediaDescription) -> Direction:
    direction = offer.direction_of(m)
    if _null_connection(m.connection or offer.connection):
        # RFC 3264 §8.4: c=0.0.0.0 "means that neither RTP nor RTCP should be sent to the peer",
        # so the offerer does not receive whatever its attribute says.
        direction = Direction.of(sends=direction.sends, receives=False)
    return direction


def _family(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _origin_for(username: str, local_address: str, session_id: int, session_version: int) -> Origin:
    return Origin(
        username,
        str(session_id),
        str(session_version),
        "IN",
        _family(local_address),
        local_address,
    )


def build_answer(
    offer: SessionDescription,
    *,
    local_address: str,
    ports: dict[str, int],
    session_id: int,
    session_version: int,
    audio_direction: Direction = Direction.SENDRECV,
    video_direction: Direction = Direction.SENDRECV,
    username: str = "-",
    accept: Callable[[MediaDescription], list[str]] | None = None,
    ptime: int | None = None,
) -> SessionDescription:
    """Our answer to ``offer`` (RFC 3264 §6), with ``username`` in its ``o=`` line.

    One m-line per offered one, in the same order. A stream is accepted when its media type has a
    port in ``ports``, its profile is plain RTP and it offers a codec we know; the first such stream
    of each type gets ``ports[media]`` (one anchor port per type), later ones are rejected. Rejected
    streams get port 0 and the offered formats (§6). Directions follow :func:`answer_direction`.
    No accepted audio stream → 488 Not Acceptable Here. ``accept`` chooses the formats of an
    offered stream (default: every codec this module knows, in the offer's order); ``ptime``, when
    given, is the audio packet time we send (RFC 4566 §6), otherwise the offer's is echoed.
    """
    choose = accept or accepted_formats
    answered: list[MediaDescription] = []
    taken: set[str] = set()
    for m in offer.media:
        usable = (
            m.media in ports
            and m.media not in taken
            and not m.rejected
            and m.proto in _RTP_PROFILES
        )
        formats = choose(m) if usable else []
        if not formats:
            answered.append(MediaDescription(m.media, 0, m.proto, m.formats))
            continue
        taken.add(m.media)
        attributes: list[Attribute] = []
        for fmt in formats:
            # Keep the offer's rtpmap/fmtp so that dynamic types mean the same on both sides.
            encoding = m.rtpmap(fmt)
            if encoding is not None:
                attributes.append(("rtpmap", f"{fmt} {encoding}"))
            params = m.fmtp(fmt)
            if params is not None:
                attributes.append(("fmtp", f"{fmt} {params}"))
        offered_ptime = m.attribute("ptime")
        if ptime is not None and m.media == "audio":
            attributes.append(("ptime", str(ptime)))
        elif offered_ptime:
            attributes.append(("ptime", offered_ptime))  # echoed: no packetisation of our own
        local = audio_direction if m.media == "audio" else video_direction
        direction = answer_direction(_offered_direction(offer, m), local)
        attributes.append((direction.value, None))
        answered.append(
            MediaDescription(
                m.media, ports[m.media], m.proto, tuple(formats), attributes=tuple(attributes)
            )
        )
    if "audio" not in taken:
        raise RemoteProtocolError("no audio stream with a codec we accept", status_hint=488)
    return SessionDescription(
        _origin_for(username, local_address, session_id, session_version),
        connection=f"IN {_family(local_address)} {local_address}",
        media=tuple(answered),
    )


#: The port a re-offer's shape gives each stream it keeps: any nonzero number (zero would reject
#: it), since each offer writes the call's anchor port there.
_SHAPE_PORT = 9


def offer_shape(media: tuple[MediaDescription, ...]) -> tuple[MediaDescription, ...]:
    """What a re-offer takes from our last description (RFC 3264 §8): its m-lines, less what each
    offer writes anew (the anchor ports, the directions). Calls answered alike have equal shapes,
    so that one copy can serve them all."""
    return tuple(
        m
        if m.rejected
        else MediaDescription(  # not dataclasses.replace: this runs for every call, and is 2x faster
            m.media,
            _SHAPE_PORT,
            m.proto,
            m.formats,
            m.port_count,
            m.connection,
            with_direction(m.attributes, Direction.SENDRECV),
            m.lines,
        )
        for m in media
    )


def build_offer(
    *,
    local_address: str,
    ports: dict[str, int],
    session_id: int,
    session_version: int,
    previous: tuple[MediaDescription, ...] | None = None,
    audio_direction: Direction = Direction.SENDRECV,
    video_direction: Direction = Direction.SENDRECV,
    username: str = "-",
) -> SessionDescription:
    """Our offer, for a re-INVITE or the 200 to an INVITE without SDP, with ``username`` in its
    ``o=`` line.

    With ``previous`` (the media of our last description in the dialog, or their
    :func:`offer_shape`): the same m-lines in the same order with the same formats (RFC 3264 §8);
    only the directions, the anchor ports and ``o=`` version change.
    This is how the bridge mutes a phone (``sendonly``) and unmutes it (``sendrecv``). Rejected
    streams stay rejected. Without it: one audio stream with the codecs we take.
    """
    origin = _origin_for(username, local_address, session_id, session_version)
    connection = f"IN {_family(local_address)} {local_address}"
    if previous is not None:
        media = tuple(
            m
            if m.rejected
            else replace(
                m,
                port=ports.get(m.media, m.port),
                attributes=with_direction(
                    m.attributes, audio_direction if m.media == "audio" else video_direction
                ),
            )
            for m in previous
        )
        return SessionDescription(origin, connection=connection, media=media)
    attributes: list[Attribute] = []
    for pt, encoding, params in _DEFAULT_AUDIO:
        attributes.append(("rtpmap", f"{pt} {encoding}"))
        if params is not None:
            attributes.append(("fmtp", f"{pt} {params}"))
    attributes.append((audio_direction.value, None))
    audio = MediaDescription(
        "audio",
        ports["audio"],
        "RTP/AVP",
        tuple(pt for pt, _, _ in _DEFAULT_AUDIO),
        attributes=tuple(attributes),
    )
    return SessionDescription(origin, connection=connection, media=(audio,))


def is_hold(offer: SessionDescription) -> bool:
    """Whether the phone put us on hold (RFC 3264 §8.4).

    Its first audio stream with a port (the one we answer) is ``sendonly`` or ``inactive``, or uses
    the RFC 2543 form ``c=IN IP4 0.0.0.0`` (session or media level). ``recvonly`` is a phone that
    only listens: a mute, not a hold (docs/behaviour.md, Phone to server).
    """
    for m in offer.media:
        if m.media != "audio" or m.rejected:
            continue
        if _null_connection(m.connection or offer.connection):
            return True
        return offer.direction_of(m) in (Direction.SENDONLY, Direction.INACTIVE)
    return False
