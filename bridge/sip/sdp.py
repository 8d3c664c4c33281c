"""SDP (RFC 4566) and the offer/answer model (RFC 3264) as the bridge needs them.

The bridge is signalling only: it answers every offer with its media anchor's ports, keeps the
phone's codecs where it knows them (media is dropped, so any codec the phone can send will do), and
uses the direction attributes to carry mute and hold. Everything it does not understand in an offer
is kept verbatim on parse and rejected politely (port 0) in the answer, never an exception other
than :class:`RemoteProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from .errors import RemoteProtocolError

#: Lines in one description. A desk phone's offer has ~15, a WebRTC offer with ICE candidates ~100;
#: 1,024 bounds the work of a hostile body well above any real one.
MAX_LINES = 1024
#: Media sections. Offers carry one to three (audio, video, BFCP); 64 is generous and bounds the answer.
MAX_MEDIA = 64

# RFC 4566 §5: "the order of the lines is fixed"; unknown types are ignored (§5, "MUST ignore").
_SESSION_ORDER = "vosiuepcbtrzka"
_MEDIA_ORDER = "micbka"

#: RTP profiles we answer. Secure profiles need keys (a=crypto, DTLS) that a drop-everything anchor
#: cannot honestly negotiate, so such streams are rejected (port 0) rather than faked.
_RTP_PROFILES = frozenset({"RTP/AVP", "RTP/AVPF"})

# Codecs we accept by encoding name (lower case) per media type, and the static payload types that
# need no rtpmap (RFC 3551 §6).
_AUDIO_CODECS = frozenset({"pcmu", "pcma", "g722", "opus", "telephone-event"})
_VIDEO_CODECS = frozenset({"h264", "vp8", "vp9"})
_STATIC_AUDIO = {"0": "pcmu", "8": "pcma", "9": "g722"}

_DEFAULT_AUDIO = (
    ("0", "PCMU/8000", None),
    ("8", "PCMA/8000", None),
    ("9", "G722/8000", None),
    ("111", "opus/48000/2", None),
    ("101", "telephone-event/8000", "0-16"),
)


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
    """RFC 3264 §6.1: we may send only what the offerer receives, and receive only what it sends;
    ``local`` narrows further (``SENDONLY`` asks the phone not to send: the bridge's mute)."""
    return Direction.of(
        sends=offered.receives and local.sends, receives=offered.sends and local.receives
    )


Attribute = tuple[str, str | None]


def _direction_in(attributes: tuple[Attribute, ...]) -> Direction | None:
    for name, value in attributes:
        if value is None and name in _DIRECTIONS:
            return Direction(name)
    return None


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section: ``m=<media> <port>[/<count>] <proto> <fmt> ...`` (RFC 4566 §5.14)."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: str | None = None
    """The media-level ``c=`` value (``IN IP4 192.0.2.1``), if any."""
    attributes: tuple[Attribute, ...] = ()
    lines: tuple[tuple[str, str], ...] = ()
    """Other media-level lines (``i=``, ``b=``, ``k=``) kept verbatim."""

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute, if present."""
        return _direction_in(self.attributes)

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def rtpmap(self, fmt: str) -> str | None:
        """``PCMU/8000`` for ``a=rtpmap:0 PCMU/8000``."""
        for key, value in self.attributes:
            if key == "rtpmap" and value is not None:
                pt, _, encoding = value.partition(" ")
                if pt == fmt:
                    return encoding.strip()
        return None

    def fmtp(self, fmt: str) -> str | None:
        for key, value in self.attributes:
            if key == "fmtp" and value is not None:
                pt, _, params = value.partition(" ")
                if pt == fmt:
                    return params.strip()
        return None


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (RFC 4566 §5.2)."""

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
    origin: Origin
    name: str = "-"
    connection: str | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    lines: tuple[tuple[str, str], ...] = (("t", "0 0"),)
    """Other session-level lines (``i u e p b t r z k``) kept verbatim, in order."""

    @property
    def audio(self) -> MediaDescription | None:
        return next((m for m in self.media if m.media == "audio"), None)

    @property
    def video(self) -> MediaDescription | None:
        return next((m for m in self.media if m.media == "video"), None)

    def direction_of(self, media: MediaDescription) -> Direction:
        """The effective direction: media-level, else session-level, else sendrecv (§6)."""
        return media.direction or _direction_in(self.attributes) or Direction.SENDRECV

    def encode(self) -> bytes:
        out = ["v=0", f"o={self.origin}", f"s={self.name}"]
        session = sorted(
            [*self.lines, *([("c", self.connection)] if self.connection else [])],
            key=lambda line: _SESSION_ORDER.index(line[0]),
        )
        out.extend(f"{kind}={value}" for kind, value in session)
        out.extend(_attribute_line(a) for a in self.attributes)
        for m in self.media:
            port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
            out.append(f"m={m.media} {port} {m.proto} {' '.join(m.formats)}".rstrip())
            lines = sorted(
                [*m.lines, *([("c", m.connection)] if m.connection else [])],
                key=lambda line: _MEDIA_ORDER.index(line[0]),
            )
            out.extend(f"{kind}={value}" for kind, value in lines)
            out.extend(_attribute_line(a) for a in m.attributes)
        return ("\r\n".join(out) + "\r\n").encode("utf-8", "surrogateescape")


def _attribute_line(attribute: Attribute) -> str:
    name, value = attribute
    return f"a={name}" if value is None else f"a={name}:{value}"


# -- parsing ---------------------------------------------------------------------------------------


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse a session description. Malformed → :class:`RemoteProtocolError` with status 400.

    Liberal where it costs nothing: LF-only line ends, trailing whitespace, blank lines, unknown
    line types (ignored, RFC 4566 §5) and unknown attributes (kept).
    """
    text = data.decode("utf-8", "surrogateescape")
    lines = [line.rstrip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    if len(lines) > MAX_LINES:
        raise RemoteProtocolError(f"SDP has more than {MAX_LINES} lines")
    if not lines or lines[0] != "v=0":
        raise RemoteProtocolError("SDP must start with v=0")
    origin: Origin | None = None
    name: str | None = None
    connection: str | None = None
    attributes: list[Attribute] = []
    session_lines: list[tuple[str, str]] = []
    media: list[MediaDescription] = []
    current: dict[str, object] | None = None  # the m= section being read
    for line in lines[1:]:
        kind, eq, value = line[:1], line[1:2], line[2:]
        if eq != "=" or not kind.isalpha():
            raise RemoteProtocolError(f"malformed SDP line {line[:30]!r}")
        if kind == "m":
            if len(media) + (current is not None) >= MAX_MEDIA:
                raise RemoteProtocolError(f"SDP has more than {MAX_MEDIA} media sections")
            if current is not None:
                media.append(_media(current))
            current = {"m": value, "a": [], "lines": [], "c": None}
        elif current is not None:
            if kind == "a":
                current["a"].append(_attribute(value))  # type: ignore[attr-defined]
            elif kind == "c":
                current["c"] = _connection(value)
            elif kind in "ibk":
                current["lines"].append((kind, value))  # type: ignore[attr-defined]
        elif kind == "o":
            origin = _origin(value)
        elif kind == "s":
            name = value
        elif kind == "c":
            connection = _connection(value)
        elif kind == "a":
            attributes.append(_attribute(value))
        elif kind in "iuepbtrzk":
            session_lines.append((kind, value))
    if current is not None:
        media.append(_media(current))
    if origin is None:
        raise RemoteProtocolError("SDP without o= line")
    if name is None:
        raise RemoteProtocolError("SDP without s= line")
    if not any(kind == "t" for kind, _ in session_lines):
        raise RemoteProtocolError("SDP without t= line")
    return SessionDescription(
        origin, name, connection, tuple(attributes), tuple(media), tuple(session_lines)
    )


def _origin(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise RemoteProtocolError("malformed SDP o= line")
    return Origin(*parts)


def _connection(value: str) -> str:
    # c=<nettype> <addrtype> <connection-address> (RFC 4566 §5.7)
    parts = value.split()
    if len(parts) != 3:
        raise RemoteProtocolError("malformed SDP c= line")
    return " ".join(parts)


def _attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name:
        raise RemoteProtocolError("SDP attribute without a name")
    return (name, rest if colon else None)


def _media(section: dict[str, object]) -> MediaDescription:
    # m=<media> <port>/<number of ports> <proto> <fmt> ... (RFC 4566 §5.14)
    parts = str(section["m"]).split()
    if len(parts) < 3:
        raise RemoteProtocolError("malformed SDP m= line")
    kind, port_text, proto, *formats = parts
    port_part, slash, count_part = port_text.partition("/")
    if not port_part.isdigit() or len(port_part) > 5 or int(port_part) > 65535:
        raise RemoteProtocolError(f"bad SDP media port {port_text[:12]!r}")
    if slash and (not count_part.isdigit() or len(count_part) > 5):
        raise RemoteProtocolError(f"bad SDP port count {port_text[:12]!r}")
    attributes = section["a"]
    lines = section["lines"]
    assert isinstance(attributes, list) and isinstance(lines, list)
    connection = section["c"]
    return MediaDescription(
        media=kind,
        port=int(port_part),
        proto=proto,
        formats=tuple(formats),
        port_count=int(count_part) if slash else None,
        connection=connection if isinstance(connection, str) else None,
        attributes=tuple(attributes),
        lines=tuple(lines),
    )


# -- offer/answer ----------------------------------------------------------------------------------


def _codec(m: MediaDescription, fmt: str) -> str | None:
    """The lower-case encoding name of ``fmt`` in ``m``, from rtpmap or the static table."""
    encoding = m.rtpmap(fmt)
    if encoding is not None:
        return encoding.partition("/")[0].lower()
    return _STATIC_AUDIO.get(fmt) if m.media == "audio" else None


def _accepted_formats(m: MediaDescription) -> list[str]:
    known = _AUDIO_CODECS if m.media == "audio" else _VIDEO_CODECS
    chosen = [f for f in m.formats if _codec(m, f) in known]
    if m.media == "audio" and all(_codec(m, f) == "telephone-event" for f in chosen):
        return []  # telephone-event alone carries no audio
    return chosen


def _family(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _origin_for(local_address: str, session_id: int, session_version: int) -> Origin:
    return Origin(
        "spaces-bridge",
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
) -> SessionDescription:
    """Our answer (RFC 3264 §6): one m-line per offered one, in order; streams we cannot take are
    rejected with port 0. No usable audio stream → 488 Not Acceptable Here."""
    answered: list[MediaDescription] = []
    audio_ok = False
    for m in offer.media:
        formats = _accepted_formats(m) if m.media in ports and m.port != 0 else []
        if not formats or m.proto not in _RTP_PROFILES:
            answered.append(MediaDescription(m.media, 0, m.proto, m.formats))
            continue
        local = audio_direction if m.media == "audio" else video_direction
        attributes: list[Attribute] = []
        for fmt in formats:
            encoding = m.rtpmap(fmt)
            if encoding is not None:
                attributes.append(("rtpmap", f"{fmt} {encoding}"))
            params = m.fmtp(fmt)
            if params is not None:
                attributes.append(("fmtp", f"{fmt} {params}"))
        ptime = m.attribute("ptime")
        if ptime:
            attributes.append(("ptime", ptime))
        attributes.append((answer_direction(offer.direction_of(m), local).value, None))
        answered.append(
            MediaDescription(
                m.media, ports[m.media], m.proto, tuple(formats), None, None, tuple(attributes)
            )
        )
        audio_ok = audio_ok or m.media == "audio"
    if not audio_ok:
        raise RemoteProtocolError("no audio stream with a codec we accept", status_hint=488)
    return SessionDescription(
        _origin_for(local_address, session_id, session_version),
        connection=f"IN {_family(local_address)} {local_address}",
        media=tuple(answered),
    )


def build_offer(
    *,
    local_address: str,
    ports: dict[str, int],
    session_id: int,
    session_version: int,
    previous: SessionDescription | None = None,
    audio_direction: Direction = Direction.SENDRECV,
    video_direction: Direction = Direction.SENDRECV,
) -> SessionDescription:
    """Our offer: for a re-INVITE, ``previous`` (our last description in the dialog) with only the
    directions and the version changed (RFC 3264 §8: same m-lines, same order, same formats);
    without it, one audio stream with the codecs we take."""
    origin = _origin_for(local_address, session_id, session_version)
    connection = f"IN {_family(local_address)} {local_address}"
    if previous is not None:
        media = tuple(
            m
            if m.port == 0
            else replace(
                m,
                port=ports.get(m.media, m.port),
                attributes=with_direction(
                    m.attributes, audio_direction if m.media == "audio" else video_direction
                ),
            )
            for m in previous.media
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


def with_direction(
    attributes: tuple[Attribute, ...], direction: Direction
) -> tuple[Attribute, ...]:
    """``attributes`` with any direction attribute replaced by ``direction``."""
    kept = tuple(a for a in attributes if not (a[1] is None and a[0] in _DIRECTIONS))
    return (*kept, (direction.value, None))


def is_hold(offer: SessionDescription) -> bool:
    """RFC 3264 §8.4: the phone put us on hold: its audio stream is ``sendonly`` or ``inactive``, or
    uses the RFC 2543 form ``c=IN IP4 0.0.0.0``. (``recvonly`` is a phone that only listens: a mute,
    not a hold; SPEC §4.)"""
    for m in offer.media:
        if m.media != "audio" or m.port == 0:
            continue
        connection = m.connection or offer.connection or ""
        if connection.endswith(" 0.0.0.0"):
            return True
        if offer.direction_of(m) in (Direction.SENDONLY, Direction.INACTIVE):
            return True
    return False
