"""Parsing SIP messages from datagrams, and framing them out of byte streams (RFC 3261 §7, §18.3).

The hot path works on the whole header block at once: one ``find`` for the blank line, one decode, one
split on CRLF, and a split and a cached-name lookup per header line. It takes only the shape nearly
every message has (CRLF, no folding, names seen before); anything else goes to the general path, and a
Hypothesis test holds both to the same result. Typed values (Via, From, CSeq...) are parsed only when
the caller reads them (see :mod:`bridge.sip.message`).

Security limits (each a bound on what one peer can make us hold or scan):
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RemoteProtocolError
from .headers import COMPACT_FORMS, KNOWN_METHODS
from .message import Message, Request, Response
from .uri import is_token

#: Largest message accepted. 65,535 is the largest UDP payload; RFC 3261 §18.1.1 moves anything near the
#: path MTU to TCP, and no signalling message the bridge handles comes close. Larger → 513.
MAX_MESSAGE_BYTES = 65_535
#: Most header fields in one message. A desk phone's INVITE carries about 15 and RFC 4475's longest
#: message about 30; 256 leaves room for long Via/Record-Route chains while bounding per-message work.
MAX_HEADERS = 256
#: Longest header line after unfolding. RFC 4475's longest is under 600 bytes and Identity headers reach
#: about 1 KiB; 8 KiB keeps one pathological header from taking the whole message bound.
MAX_LINE_BYTES = 8_192

_FOLD_RE = re.compile(r"\n[ \t]+")
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+\Z", re.IGNORECASE)
_KNOWN_KEYS = frozenset(
    {
        *COMPACT_FORMS.values(),
        "accept",
        "allow",
        "call-info",
        "contact",
        "cseq",
        "max-forwards",
        "record-route",
        "route",
        "user-agent",
        "server",
        "require",
        "proxy-require",
        "unsupported",
        "expires",
        "date",
        "timestamp",
        "authorization",
        "www-authenticate",
        "proxy-authorization",
        "proxy-authenticate",
        "recv-info",
        "info-package",
        "reason",
        "retry-after",
        "warning",
        "p-asserted-identity",
        "mime-version",
        "organization",
        "priority",
    }
)


def parse_message(data: bytes, *, datagram: bool = True) -> Request | Response:
    """Parse one message.

    ``datagram``: the bytes are a whole UDP payload. Content-Length may be absent (the body is the rest)
    and octets past Content-Length are ignored (RFC 3261 §18.3, RFC 4475 §3.1.1.8). Otherwise the bytes
    are one frame cut by :class:`StreamFramer`.

    Raises :class:`RemoteProtocolError`; when the start line and headers were readable, ``partial``
    holds the message so that a UAS can answer it.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise RemoteProtocolError("message too large", status_hint=513)
    parsed = _parse_head_fast(data)
    message, body = parsed if parsed is not None else _parse_head(data)
    message.body = _frame_body(message, body, datagram)
    return message


def _parse_head_fast(data: bytes) -> tuple[Request | Response, bytes] | None:
    """The shape nearly every message has: CRLF line ends, no folded lines, header names seen before,
    a head shorter than one line may be. None when the message has another shape: then
    :func:`_parse_head` decides, so that the result never depends on which path ran."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or end > MAX_LINE_BYTES:
        return None  # no value can exceed the line limit when the whole head is within it
    text = data[:end].decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    # A bare LF could end the head early ("\n\n") or end a line: counting is cheaper than searching.
    if len(lines) > MAX_HEADERS + 1 or text.count("\n") != len(lines) - 1:
        return None
    try:
        message = _parse_start_line(lines[0].rstrip("\r"))
    except RemoteProtocolError:
        return None  # the general path builds the partial message a UAS answers with 400 or 505
    names = _NAMES
    try:
        # message-header = field-name HCOLON field-value (§25.1). A line without a colon fails the
        # unpacking (ValueError); a name not seen before fails the lookup (KeyError).
        items = [
            (names[n], v.strip(" \t\r")) for n, v in [line.split(":", 1) for line in lines[1:]]
        ]
    except (KeyError, ValueError):
        # A continuation line starts with SP or HTAB, which no cached name does: unfold first.
        if "\n " in text or "\n\t" in text:
            return None
        items = _read_fields(lines[1:], message)
    message.headers._items = items  # the container is new and unshared
    return message, data[end + 4 :]


def _parse_head(data: bytes) -> tuple[Request | Response, bytes]:
    """Any shape: LF-only line ends, folding, new header names, long lines, a bad start line."""
    head, body = _split_head(data)
    text = head.decode("utf-8", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if "\n " in text or "\n\t" in text:
        # LWS = [*WSP CRLF] 1*WSP: a fold is the same as one SP (RFC 3261 §7.3.1).
        text = _FOLD_RE.sub(" ", text)
    lines = text.split("\n")
    if len(lines) > MAX_HEADERS + 1:
        raise RemoteProtocolError("too many header fields", status_hint=513)
    start_error: RemoteProtocolError | None = None
    message: Request | Response
    try:
        message = _parse_start_line(lines[0].rstrip("\r"))
    except RemoteProtocolError as exc:
        if lines[0][:4].upper() == "SIP/":
            raise  # a broken response is dropped: nothing to answer
        # Read the headers anyway, so that the 400 or 505 can be routed back (RFC 4475 §3.1.2.16).
        start_error = exc
        message = Request(lines[0].partition(" ")[0] or "UNKNOWN", "sip:invalid")
    message.headers._items = _read_fields(lines[1:], message)
    if start_error is not None:
        start_error.partial = message
        raise start_error
    return message, body


def _read_fields(lines: list[str], message: Message) -> list[tuple[str, str]]:
    # The partial message of an error holds the fields read so far.
    items = message.headers._items
    append = items.append
    names = _NAMES
    for line in lines:
        # message-header = field-name HCOLON field-value; HCOLON = *( SP / HTAB ) ":" SWS (§25.1)
        name, colon, value = line.partition(":")
        key = names.get(name)
        if key is None or not colon:
            key = _new_name(name, colon, line, message)
        if len(value) > MAX_LINE_BYTES:
            raise RemoteProtocolError("header line too long", status_hint=513, partial=message)
        append((key, value.strip(" \t\r")))
    return items


#: Raw header names seen before → their key. Bounded: peers choose the names, and a miss only costs
#: the validation below.
_NAMES: dict[str, str] = {}
_MAX_NAMES = 4096


def _new_name(name: str, colon: str, line: str, message: Message) -> str:
    key = name.rstrip(" \t").lower()
    if not colon or not key or not (key in _KNOWN_KEYS or is_token(key)):
        raise RemoteProtocolError(f"malformed header line {line[:40]!r}", partial=message)
    key = COMPACT_FORMS.get(key, key)
    if len(_NAMES) < _MAX_NAMES:
        _NAMES[name] = key
    return key


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\r\n\r\n")
    # LF-only senders end the header block with "\n\n"; accept whichever blank line comes first.
    lf = data.find(b"\n\n", 0, end if end >= 0 else len(data))
    if lf >= 0:
        return data[:lf], data[lf + 2 :]
    if end >= 0:
        return data[:end], data[end + 4 :]
    # No blank line at all: a datagram that ends after its last header. Take it as having no body.
    return data.rstrip(b"\r\n"), b""


def _parse_start_line(line: str) -> Request | Response:
    if line[:4].upper() == "SIP/":
        # Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF (§7.2)
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version.upper() != "SIP/2.0":
            raise RemoteProtocolError(f"unsupported version {version!r}", status_hint=505)
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise RemoteProtocolError(f"bad status code {code[:12]!r}")
        return Response(int(code), reason)
    # Request-Line = Method SP Request-URI SP SIP-Version CRLF (§7.1): exactly one SP between elements;
    # extra SP (RFC 4475 §3.1.2.9, §3.1.2.10) and LWS in the URI (§3.1.2.8) are rejected.
    parts = line.split(" ")
    if len(parts) != 3:
        raise RemoteProtocolError("malformed Request-Line")
    method, uri, version = parts
    if method not in KNOWN_METHODS and (not method or not is_token(method)):
        raise RemoteProtocolError(f"malformed method {method[:20]!r}")
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if _VERSION_RE.match(version):
            raise RemoteProtocolError(f"unsupported version {version!r}", status_hint=505)
        raise RemoteProtocolError("malformed Request-Line")
    if not uri:
        raise RemoteProtocolError("empty Request-URI")
    return Request(method, uri)


def _frame_body(message: Message, rest: bytes, datagram: bool) -> bytes:
    values = message.headers.get_all("content-length")
    if not values:
        return rest if datagram else b""
    if len(values) > 1:
        # Two lengths make framing ambiguous (RFC 4475 §3.3.9).
        raise RemoteProtocolError("more than one Content-Length", partial=message)
    text = values[0].strip()
    if not text.isdigit() or not text.isascii():
        raise RemoteProtocolError(f"malformed Content-Length {text[:20]!r}", partial=message)
    length = int(text)
    if length > len(rest):
        raise RemoteProtocolError("Content-Length larger than the message", partial=message)
    return rest[:length]


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A CRLF CRLF keep-alive ping on a stream; answer with a single CRLF (RFC 5626 §3.5.1)."""


KEEPALIVE_PING = KeepAlivePing()
KEEPALIVE_PONG = b"\r\n"

# Content-Length in raw header bytes, including a folded value (RFC 3261 §7.3.1).
_CL_RE = re.compile(rb"^(?:content-length|l)[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I | re.M)


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages by Content-Length (RFC 3261 §18.3).

    Feeding bytes in any split gives the same frames. A framing error (bad or duplicate Content-Length,
    a header block or message over the bound) is unrecoverable on a stream: the caller closes it.
    """

    __slots__ = ("_buf", "_need", "_scan", "max_message")

    def __init__(self, max_message: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self._scan = 0  # where the search for the blank line resumes, so feeding stays linear
        self._need = 0  # total length of the message being received, once known
        self.max_message = max_message

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_frame(self) -> bytes | KeepAlivePing | None:
        """The next whole message, a keep-alive ping, or None until more bytes arrive."""
        buf = self._buf
        if self._need:
            return self._take(self._need) if len(buf) >= self._need else None
        while buf[:1] == b"\r" or buf[:1] == b"\n":
            # CRLFs before a start line are ignored (RFC 3261 §7.5); CRLF CRLF is a ping (RFC 5626).
            if buf[:4] == b"\r\n\r\n":
                del buf[:4]
                return KEEPALIVE_PING
            if buf[:1] == b"\n":
                del buf[:1]
            elif buf[:2] == b"\r\n" and len(buf) >= 3 and buf[2:3] != b"\r":
                del buf[:2]
            elif len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                return None  # maybe the start of a ping
            else:
                del buf[:1]
        start = max(0, self._scan - 3)
        end = buf.find(b"\r\n\r\n", start)
        lf = buf.find(b"\n\n", start, end if end >= 0 else len(buf))
        if lf >= 0:
            head_end, body_start = lf, lf + 2
        elif end >= 0:
            head_end, body_start = end, end + 4
        else:
            if len(buf) > self.max_message:
                raise RemoteProtocolError("header block too large", status_hint=513)
            self._scan = len(buf)
            return None
        self._scan = 0
        lengths = _CL_RE.findall(buf, 0, head_end + 2)
        if len(lengths) > 1:
            raise RemoteProtocolError("more than one Content-Length on a stream")
        length = 0
        if lengths:
            text = lengths[0].strip()
            if not text.isdigit():
                raise RemoteProtocolError(f"malformed Content-Length {text[:20]!r} on a stream")
            length = int(text)
        total = body_start + length
        if total > self.max_message:
            raise RemoteProtocolError("message too large", status_hint=513)
        if len(buf) < total:
            self._need = total
            return None
        return self._take(total)

    def _take(self, total: int) -> bytes:
        frame = bytes(self._buf[:total])
        del self._buf[:total]
        self._need = 0
        self._scan = 0
        return frame
