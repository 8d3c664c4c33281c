"""SIP requests and responses (RFC 3261 §7) and their serialization.

Messages are plain containers: a start line, :class:`Headers` and a body of bytes. Typed accessors
(``via``, ``from_``, ``to``, ``call_id``, ``cseq``, ...) parse on first use and are cached in the header
container. ``encode()`` writes the wire form from the typed parts, computing Content-Length from the
body, so wire text is never assembled by hand elsewhere.
"""

from __future__ import annotations

from .errors import RemoteProtocolError
from .headers import CSeq, Headers, Via, display_name, parse_cseq, parse_via
from .uri import NameAddr, Uri, parse_name_addr, parse_uri, split_commas

SIP_VERSION = "SIP/2.0"

# Reason phrases we send (RFC 3261 §21 and extensions named beside each).
REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",  # RFC 6665
    491: "Request Pending",
    469: "Bad Info Package",  # RFC 6086
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def _vias(headers: Headers) -> tuple[Via, ...]:
    return tuple(parse_via(v) for line in headers.get_all("via") for v in split_commas(line))


def _top_via(headers: Headers) -> Via:
    line = headers.get("via")
    if line is None:
        raise RemoteProtocolError("missing Via header")
    return parse_via(split_commas(line)[0] if "," in line else line)


def _call_id(value: str) -> str:
    # Call-ID = ( "Call-ID" / "i" ) HCOLON callid; callid = word [ "@" word ]: no whitespace (§25.1).
    # Validated here, inside the cached view, so that repeated reads do not search again.
    # str.split() and the regex \s both use Py_UNICODE_ISSPACE: one word back means no whitespace, and
    # costs a fraction of a regex call.
    if value.split() != [value]:
        raise RemoteProtocolError(f"malformed Call-ID {value!r}")
    return value


def _contacts(headers: Headers) -> tuple[NameAddr, ...]:
    values = [v for line in headers.get_all("contact") for v in split_commas(line)]
    if values == ["*"]:
        return ()
    return tuple(parse_name_addr(v) for v in values)


def _parse_route(headers: Headers) -> tuple[NameAddr, ...]:
    return tuple(
        parse_name_addr(v) for line in headers.get_all("route") for v in split_commas(line)
    )


def _parse_record_route(headers: Headers) -> tuple[NameAddr, ...]:
    return tuple(
        parse_name_addr(v) for line in headers.get_all("record-route") for v in split_commas(line)
    )


class Message:
    """What requests and responses share."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    # -- typed accessors (parsed lazily, cached until the headers change) --------------------------
    @property
    def vias(self) -> tuple[Via, ...]:
        return self.headers.typed("via", _vias)

    @property
    def top_via(self) -> Via:
        return self.headers.typed("top-via", _top_via)

    @property
    def from_(self) -> NameAddr:
        return self.headers.typed_single("from", parse_name_addr)

    @property
    def to(self) -> NameAddr:
        return self.headers.typed_single("to", parse_name_addr)

    @property
    def call_id(self) -> str:
        return self.headers.typed_single("call-id", _call_id)

    @property
    def cseq(self) -> CSeq:
        return self.headers.typed_single("cseq", parse_cseq)

    @property
    def contacts(self) -> tuple[NameAddr, ...]:
        return self.headers.typed("contact", _contacts)

    @property
    def record_routes(self) -> tuple[NameAddr, ...]:
        return self.headers.typed("record-route", _parse_record_route)

    @property
    def routes(self) -> tuple[NameAddr, ...]:
        return self.headers.typed("route", _parse_route)

    def check_routing_headers(self) -> None:
        """Parse Via, From, To, Call-ID and CSeq now (each is then cached): the first that cannot
        be read raises :class:`RemoteProtocolError`. Every answer copies these headers (RFC 3261
        §8.2.6.2), so a message is checked here once, before anything relies on them."""
        headers = self.headers
        headers.typed("via", _vias)
        headers.typed_single("from", parse_name_addr)
        headers.typed_single("to", parse_name_addr)
        headers.typed_single("call-id", _call_id)
        headers.typed_single("cseq", parse_cseq)

    def check_contacts(self) -> None:
        """Parse the Contact header field now (it is then cached); :class:`RemoteProtocolError` if
        it cannot be read."""
        self.headers.typed("contact", _contacts)

    @property
    def content_type(self) -> str | None:
        """Media type without parameters, lower case (``application/sdp``)."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.partition(";")[0].strip().lower()

    def _start_line(self) -> str:
        raise NotImplementedError

    def encode(self) -> bytes:
        """The wire form. Content-Length always reflects ``body`` (RFC 3261 §20.14)."""
        lines = [self._start_line()]
        lines.extend(f"{display_name(k)}: {v}" for k, v in self.headers if k != "content-length")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.encode()


class Request(Message):
    __slots__ = ("_uri", "method", "raw_uri")

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: Headers | None = None,
        body: bytes = b"",
    ) -> None:
        # Not super().__init__: one call less on every parsed request.
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.method = method
        if isinstance(uri, str):
            self.raw_uri = uri
            self._uri: Uri | None = None
        else:
            self.raw_uri = str(uri)
            self._uri = uri

    def check_uri(self) -> None:
        """Parse the Request-URI now (it is then cached); :class:`RemoteProtocolError` if it cannot
        be read."""
        if self._uri is None:
            self._uri = parse_uri(self.raw_uri)

    @property
    def uri(self) -> Uri:
        """The Request-URI, parsed on first use."""
        if self._uri is None:
            self._uri = parse_uri(self.raw_uri)
        return self._uri

    def _start_line(self) -> str:
        return f"{self.method} {self.raw_uri} {SIP_VERSION}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_uri}>"


class Response(Message):
    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
    ) -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.status = status
        self.reason = REASONS.get(status, "Unknown") if reason is None else reason

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def response_to(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Response:
    """Build a response as RFC 3261 §8.2.6.2 says: copy Via, From, To, Call-ID, CSeq (and
    Record-Route for dialog-forming 2xx/1xx, §12.1.1); add the To tag when given and not present.

    Header values are copied as text, so this also answers requests whose other headers were bad.
    """
    out = Headers()
    src = request.headers
    for key, value in src:
        if key in ("via", "from", "call-id", "cseq"):
            out.add(key, value)
        elif key == "to":
            tagged = to_tag is not None and not _has_tag(request)
            out.add(key, f"{value};tag={to_tag}" if tagged else value)
        elif key == "record-route" and 100 < status < 300:
            out.add(key, value)
    for name, value in headers:
        out.add(name, value)
    return Response(status, reason, out, body)


def _has_tag(request: Request) -> bool:
    try:
        return request.to.tag is not None
    except RemoteProtocolError:
        return ";tag=" in (request.headers.get("to") or "").replace(" ", "").lower()
