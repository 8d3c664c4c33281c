"""SDP (RFC 4566): session descriptions as plain data, their parser and their encoder.

Everything this stack does not understand in a description is kept verbatim on parse (and rejected
politely in an answer: :mod:`bridge.sip.offer_answer`). No input bytes raise anything but
:class:`RemoteProtocolError`.
"""

from __future__ import annotations

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
