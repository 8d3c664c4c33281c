"""SDP (RFC 4566) and the offer/answer model (RFC 3264) as the bridge needs them.

The bridge is signalling only: it answers every offer with its media anchor's ports, keeps the
phone's codecs where it knows them (media is dropped, so any codec the phone can send will do), and
uses the direction attributes to carry mute and hold. Everything it does not understand in an offer
is kept verbatim on parse and rejected politely (port 0) in the answer. No input bytes raise anything
but :class:`RemoteProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from .errors import RemoteProtocolError

#: Lines in one description. A desk phone's offer has ~15, a WebRTC offer with ICE candidates ~100;
#: 1,024 bounds the work of a hostile body well above any real one.
MAX_LINES = 1024
#: Media sections. Offers carry one to three (audio, video, BFCP); 64 is generous and bounds the
#: answer, which must repeat every offered m-line (RFC 3264 §6).
MAX_MEDIA = 64

# RFC 4566 §5: "the order of the lines is fixed". ``t`` and ``r`` share a rank because each ``r=``
# belongs to the ``t=`` before it (time-fields = 1*( t= *(CRLF repeat-fields) CRLF)), so a stable
# sort must keep them interleaved.
_SESSION_RANK = {k: i for i, k in enumerate("vosiuepcbt")} | {"r": 9, "z": 10, "k": 11}
_MEDIA_RANK = {k: i for i, k in enumerate("micbk")}
_SESSION_KEPT = frozenset("iuepbtrzk")  # kept verbatim in SessionDescription.lines
_MEDIA_KEPT = frozenset("ibk")  # kept verbatim in MediaDescription.lines

#: RTP profiles we answer. Secure profiles need keys (a=crypto, DTLS) that a drop-everything anchor
#: cannot honestly negotiate, so such streams are rejected (port 0) rather than faked.
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


class Direction(StrEnum):
    """Media direction attributes (RFC 4566 §6), from the describing side's point of view."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, *, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE


_DIRECTIONS = frozenset(d.value for d in Direction)


def answer_direction(offered: Direction, local: Direction = Direction.SENDRECV) -> Direction:
    """The answer's direction for an offered one (RFC 3264 §6.1).

    We may send only if the offerer receives, and receive only if it sends; ``local`` narrows further
    (``SENDONLY`` asks the phone not to send: the bridge's mute). So sendonly → recvonly, recvonly →
    sendonly, inactive → inactive, sendrecv → ``local``.
    """
    return Direction.of(
        sends=offered.receives and local.sends, receives=offered.sends and local.receives
    )


#: ``attribute = (att-field ":" att-value) / att-field`` (RFC 4566 §9); a flag has value ``None``.
Attribute = tuple[str, str | None]


def _direction_in(attributes: tuple[Attribute, ...]) -> Direction | None:
    for name, value in attributes:
        if value is None and name in _DIRECTIONS:
            return Direction(name)
    return None


def with_direction(
    attributes: tuple[Attribute, ...], direction: Direction
) -> tuple[Attribute, ...]:
    """``attributes`` with any direction attribute replaced by ``direction`` (last, one only)."""
    kept = tuple(a for a in attributes if not (a[1] is None and a[0] in _DIRECTIONS))
    return (*kept, (direction.value, None))


def _null_connection(connection: str | None) -> bool:
    return connection is not None and connection.rpartition(" ")[2] in _NULL_ADDRESSES


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One media section (RFC 4566 §5.14)::

        media-field = %x6d "=" media SP port ["/" integer] SP proto 1*(SP fmt) CRLF

    followed by its ``i= c= b= k= a=`` lines. ``port`` 0 marks a rejected or disabled stream
    (RFC 3264 §6, §8.2).
    """

    media: str
    """``audio``, ``video``, ``application``..."""
    port: int
    proto: str
    """The transport profile, e.g. ``RTP/AVP``, ``RTP/SAVPF``, ``UDP/BFCP``."""
    formats: tuple[str, ...]
    """The ``fmt`` list: payload type numbers for RTP profiles, in preference order."""
    port_count: int | None = None
    """The ``/<number of ports>`` suffix of the port, if present."""
    connection: str | None = None
    """The media-level ``c=`` value (``IN IP4 192.0.2.1``), if any."""
    attributes: tuple[Attribute, ...] = ()
    """Media-level ``a=`` lines in order; unknown ones are kept (RFC 4566 §5.13)."""
    lines: tuple[tuple[str, str], ...] = ()
    """Other media-level lines (``i=``, ``b=``, ``k=``) kept verbatim, in order."""
    session_direction: Direction | None = field(default=None, compare=False, repr=False)
    """The session-level direction this section inherits; filled in by :class:`SessionDescription`,
    never encoded (it is the session's ``a=`` line)."""

    @property
    def own_direction(self) -> Direction | None:
        """The media-level direction attribute, if present."""
        return _direction_in(self.attributes)

    @property
    def direction(self) -> Direction:
        """The effective direction: media-level, else session-level, else sendrecv (RFC 4566 §6)."""
        return self.own_direction or self.session_direction or Direction.SENDRECV

    @property
    def rejected(self) -> bool:
        return self.port == 0

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name[:value]`` (``""`` for a flag), or None if absent."""
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def rtpmap(self, fmt: str) -> str | None:
        """``PCMU/8000`` for ``a=rtpmap:0 PCMU/8000`` (RFC 4566 §6)."""
        return self._per_format("rtpmap", fmt)

    def fmtp(self, fmt: str) -> str | None:
        """The parameters of ``a=fmtp:<format> <format specific parameters>`` (RFC 4566 §6)."""
        return self._per_format("fmtp", fmt)

    def _per_format(self, name: str, fmt: str) -> str | None:
        for key, value in self.attributes:
            if key == name and value is not None:
                pt, _, rest = value.partition(" ")
                if pt == fmt:
                    return rest.strip()
        return None


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line (RFC 4566 §5.2)::

    origin-field = %x6f "=" username SP sess-id SP sess-version SP
                   nettype SP addrtype SP unicast-address CRLF

    Ids stay text: phones send numbers beyond 64 bits, and we only ever echo or compare them.
    """

    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole description (RFC 4566 §5): session-level fields, then the media sections."""

    origin: Origin
    name: str = "-"
    """``s=``; ``-`` when there is nothing to say (RFC 3264 §5)."""
    connection: str | None = None
    """The session-level ``c=`` value, inherited by media without their own (RFC 4566 §5.7)."""
    attributes: tuple[Attribute, ...] = ()
    """Session-level ``a=`` lines in order."""
    media: tuple[MediaDescription, ...] = ()
    lines: tuple[tuple[str, str], ...] = (("t", "0 0"),)
    """Other session-level lines (``i u e p b t r z k``) kept verbatim, in order. ``t=0 0`` is the
    unbounded session that RFC 3264 §5 asks offers and answers to use."""

    def __post_init__(self) -> None:
        # Media sections inherit the session-level direction (RFC 4566 §6); giving each its copy
        # here lets MediaDescription.direction answer alone. Frozen, hence object.__setattr__.
        inherited = _direction_in(self.attributes)
        if any(m.session_direction is not inherited for m in self.media):
            media = tuple(replace(m, session_direction=inherited) for m in self.media)
            object.__setattr__(self, "media", media)

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute, if present."""
        return _direction_in(self.attributes)

    @property
    def audio(self) -> MediaDescription | None:
        """The first audio section, if any."""
        return next((m for m in self.media if m.media == "audio"), None)

    @property
    def video(self) -> MediaDescription | None:
        """The first video section, if any."""
        return next((m for m in self.media if m.media == "video"), None)

    def direction_of(self, media: MediaDescription) -> Direction:
        """The effective direction of ``media`` in this session (RFC 4566 §6)."""
        return media.own_direction or self.direction or Direction.SENDRECV

    def encode(self) -> bytes:
        """The wire form: CRLF lines in the order of RFC 4566 §5 (v o s i u e p c b t r z k a, then
        each m= with i c b k a). Text parsed with surrogate escapes goes back out byte for byte."""
        out = ["v=0", f"o={self.origin}", f"s={self.name}"]
        session = [*self.lines, *([("c", self.connection)] if self.connection else [])]
        session.sort(key=lambda line: _SESSION_RANK[line[0]])  # stable: keeps t/r pairs
        out.extend(f"{kind}={value}" for kind, value in session)
        out.extend(_attribute_line(a) for a in self.attributes)
        for m in self.media:
            port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
            out.append(" ".join((f"m={m.media}", port, m.proto, *m.formats)))
            lines = [*m.lines, *([("c", m.connection)] if m.connection else [])]
            lines.sort(key=lambda line: _MEDIA_RANK[line[0]])
            out.extend(f"{kind}={value}" for kind, value in lines)
            out.extend(_attribute_line(a) for a in m.attributes)
        return ("\r\n".join(out) + "\r\n").encode("utf-8", "surrogateescape")


def _attribute_line(attribute: Attribute) -> str:
    name, value = attribute
    return f"a={name}" if value is None else f"a={name}:{value}"


# -- parsing ---------------------------------------------------------------------------------------


class _Section:
    """A media section while its lines are being read."""

    __slots__ = ("attributes", "connection", "lines", "mline")

    def __init__(self, mline: str) -> None:
        self.mline = mline
        self.connection: str | None = None
        self.attributes: list[Attribute] = []
        self.lines: list[tuple[str, str]] = []


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse a session description (RFC 4566 §5). Malformed → :class:`RemoteProtocolError` (400).

    Liberal where it costs nothing: LF-only line ends, trailing spaces and tabs, blank lines, unknown
    attributes (kept, as §5.13 "MUST ignore" allows) and unknown type letters (the line is ignored,
    where §5 would have us ignore the whole description: phones do not send them, and dropping the
    call over one would help nobody). Bytes that are not UTF-8 are kept as surrogate escapes, so
    :meth:`SessionDescription.encode` gives them back unchanged.
    """
    text = data.decode("utf-8", "surrogateescape")
    # Split at most MAX_LINES times so that a hostile body costs no more than a legitimate one.
    raw = text.split("\n", MAX_LINES)
    # The unsplit rest, if any, is dropped; only blank lines may be in it.
    if len(raw) > MAX_LINES and raw.pop().strip():
        raise RemoteProtocolError(f"SDP has more than {MAX_LINES} lines")
    lines = [stripped for line in raw if (stripped := line.rstrip(" \t\r"))]
    if not lines or lines[0] != "v=0":
        # proto-version = %x76 "=" 1*DIGIT CRLF ; "this memo describes version 0"
        raise RemoteProtocolError("SDP must start with v=0")
    origin: Origin | None = None
    name: str | None = None
    connection: str | None = None
    attributes: list[Attribute] = []
    session_lines: list[tuple[str, str]] = []
    sections: list[_Section] = []
    for line in lines[1:]:
        kind, eq, value = line[:1], line[1:2], line[2:]
        # "<type>=<value>", <type> exactly one letter, no whitespace around "=" (RFC 4566 §5);
        # byte-string = 1*(%x01-09/%x0B-0C/%x0E-FF): no NUL and no CR inside a value.
        if eq != "=" or not (kind.isascii() and kind.isalpha()):
            raise RemoteProtocolError(f"malformed SDP line {line[:30]!r}")
        if "\r" in value or "\x00" in value:
            raise RemoteProtocolError("SDP line with a bare CR or NUL")
        if kind == "m":
            if len(sections) >= MAX_MEDIA:
                raise RemoteProtocolError(f"SDP has more than {MAX_MEDIA} media sections")
            sections.append(_Section(value))
        elif sections:
            section = sections[-1]
            if kind == "a":
                section.attributes.append(_attribute(value))
            elif kind == "c":
                section.connection = _connection(value)
            elif kind in _MEDIA_KEPT:
                section.lines.append((kind, value))
            # anything else (session-only or unknown letters) is ignored
        elif kind == "o":
            origin = _origin(value)
        elif kind == "s":
            name = value
        elif kind == "c":
            connection = _connection(value)
        elif kind == "a":
            attributes.append(_attribute(value))
        elif kind in _SESSION_KEPT:
            session_lines.append((kind, value))
    if origin is None:
        raise RemoteProtocolError("SDP without o= line")
    if name is None:
        raise RemoteProtocolError("SDP without s= line")
    if not any(kind == "t" for kind, _ in session_lines):
        raise RemoteProtocolError("SDP without t= line")
    # Lines out of the §5 order are put in it (stably), so that parse(encode(x)) == x for every x.
    session_lines.sort(key=lambda line: _SESSION_RANK[line[0]])
    return SessionDescription(
        origin,
        name,
        connection,
        tuple(attributes),
        tuple(_media(section) for section in sections),
        tuple(session_lines),
    )


def _words(value: str) -> list[str]:
    # The grammar separates fields with one SP; we accept runs of spaces and tabs.
    return value.replace("\t", " ").split()


def _uint(text: str, limit: int) -> int | None:
    # ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
    if text.isascii() and text.isdigit() and len(text) <= 10:
        number = int(text)
        if number <= limit:
            return number
    return None


def _origin(value: str) -> Origin:
    parts = _words(value)
    if len(parts) != 6:
        raise RemoteProtocolError("malformed SDP o= line")
    return Origin(*parts)


def _connection(value: str) -> str:
    # connection-field = [%x63 "=" nettype SP addrtype SP connection-address CRLF] (RFC 4566 §5.7)
    parts = _words(value)
    if len(parts) != 3:
        raise RemoteProtocolError("malformed SDP c= line")
    return " ".join(parts)


def _attribute(value: str) -> Attribute:
    # attribute = (att-field ":" att-value) / att-field ; att-field = token (RFC 4566 §9)
    name, colon, rest = value.partition(":")
    if not name:
        raise RemoteProtocolError("SDP attribute without a name")
    return (name, rest if colon else None)


def _media(section: _Section) -> MediaDescription:
    # media-field = %x6d "=" media SP port ["/" integer] SP proto 1*(SP fmt) CRLF (RFC 4566 §5.14).
    # An empty fmt list is accepted: some stacks send it for rejected streams.
    parts = _words(section.mline)
    if len(parts) < 3:
        raise RemoteProtocolError("malformed SDP m= line")
    kind, port_text, proto, *formats = parts
    port_part, slash, count_part = port_text.partition("/")
    port = _uint(port_part, 65535)
    if port is None:
        raise RemoteProtocolError(f"bad SDP media port {port_text[:12]!r}")
    count = _uint(count_part, 65535) if slash else None
    if slash and count is None:
        raise RemoteProtocolError(f"bad SDP port count {port_text[:12]!r}")
    return MediaDescription(
        media=kind,
        port=port,
        proto=proto,
        formats=tuple(formats),
        port_count=count,
        connection=section.connection,
        attributes=tuple(section.attributes),
        lines=tuple(sorted(section.lines, key=lambda line: _MEDIA_RANK[line[0]])),
    )


# -- offer/answer ----------------------------------------------------------------------------------


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
