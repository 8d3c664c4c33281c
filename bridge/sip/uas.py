"""UAS request inspection (RFC 3261 §8.2), the stateless answer to what fails it, and response
routing (§18.2.1-§18.2.2, RFC 3581).

Functions without state: each check raises :class:`RemoteProtocolError` with the status a UAS
answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .address import Address, Transport
from .errors import RemoteProtocolError
from .headers import KNOWN_METHODS, METHODS, SINGLE_VALUED, Via, display_name
from .message import Request, response_to
from .uri import SipUri, Uri, split_commas

_MANDATORY = ("via", "from", "to", "call-id", "cseq")


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What this UAS serves; drives the §8.2 checks."""

    allowed_methods: frozenset[str] = frozenset(
        {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "SUBSCRIBE", "NOTIFY"}
    )
    """Methods served (the TU's, and ACK, BYE and CANCEL, which the core handles); other known
    methods get 405 with Allow, unknown ones 501."""
    supported_extensions: frozenset[str] = frozenset()
    """Option tags we implement; a Require naming any other gets 420 (§8.2.2.3)."""
    accepted_bodies: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {
            "INVITE": frozenset({"application/sdp"}),
            "ACK": frozenset({"application/sdp"}),
        }
    )
    """Body types per method checked by the core (415 with Accept); other methods are the TU's."""

    @property
    def allow_header(self) -> str:
        """The Allow value: the methods served, known ones in :data:`METHODS` order."""
        known = [m for m in METHODS if m in self.allowed_methods]
        return ", ".join([*known, *sorted(self.allowed_methods - KNOWN_METHODS)])


def check_headers(request: Request) -> None:
    """Mandatory headers present, single-valued ones once, typed values parseable (§8.1.1, §20).

    Max-Forwards may be absent: RFC 2543 peers omit it (RFC 4475 §3.4.1).
    """
    headers = request.headers
    for key in _MANDATORY:
        if key not in headers:
            raise RemoteProtocolError(f"missing {display_name(key)} header")
    if headers.has_repeats:  # most requests repeat no header: skip counting each name
        for key in SINGLE_VALUED:
            if headers.count(key) > 1:
                raise RemoteProtocolError(f"more than one {display_name(key)} header")
    request.check_routing_headers()  # every answer copies them: unreadable ones cannot be answered
    max_forwards = headers.get("max-forwards")
    if max_forwards is not None:
        value = max_forwards.strip()
        if not value.isdigit() or int(value) > 255:
            raise RemoteProtocolError(f"malformed Max-Forwards {value[:20]!r}")
    for contact_line in headers.get_all("contact"):
        if contact_line.strip() != "*":
            request.check_contacts()
            break
    request.check_uri()


def check_method(request: Request, policy: UasPolicy) -> None:
    """§8.2.1 method inspection, then the CSeq method match (RFC 4475 §3.1.2.17/18)."""
    method = request.method
    if method not in policy.allowed_methods:
        if method in KNOWN_METHODS:
            raise RemoteProtocolError(
                f"{method} is not served here",
                status_hint=405,
                extra_headers=(("Allow", policy.allow_header),),
            )
        raise RemoteProtocolError(f"unknown method {method[:32]}", status_hint=501)
    if request.cseq.method != method:
        raise RemoteProtocolError("CSeq method does not match the Request-Line")


def check_request(request: Request, policy: UasPolicy) -> None:
    """§8.2.2 header inspection and §8.2.3 content processing, for requests outside a transaction."""
    uri = request.uri
    if not isinstance(uri, SipUri):
        raise RemoteProtocolError(
            f"unsupported URI scheme {uri.scheme[:20]}",
            status_hint=416,
        )
    if request.method not in ("ACK", "CANCEL"):
        required = {
            t.strip() for line in request.headers.get_all("require") for t in line.split(",")
        }
        unsupported = sorted(t for t in required if t and t not in policy.supported_extensions)
        if unsupported:
            raise RemoteProtocolError(
                "unsupported extension required",
                status_hint=420,
                extra_headers=(("Unsupported", ", ".join(unsupported)),),
            )
    accepted = policy.accepted_bodies.get(request.method)
    if accepted is not None and request.body:
        ctype = request.content_type
        if ctype not in accepted:
            raise RemoteProtocolError(
                f"unsupported body type {str(ctype)[:40]}",
                status_hint=415,
                extra_headers=(("Accept", ", ".join(sorted(accepted))),),
            )
        encoding = request.headers.get("content-encoding")
        if encoding and encoding.strip().lower() != "identity":
            raise RemoteProtocolError(
                "unsupported content encoding",
                status_hint=415,
                extra_headers=(("Accept-Encoding", "identity"),),
            )
    if request.method == "INVITE":
        accept = request.headers.get_all("accept")
        if accept and not _accepts_sdp(accept):
            # Our answer carries SDP; a caller that cannot take it gets 406 (RFC 4475 §3.3.15).
            raise RemoteProtocolError("caller does not accept application/sdp", status_hint=406)


def _accepts_sdp(lines: list[str]) -> bool:
    for line in lines:
        for item in split_commas(line):
            media = item.partition(";")[0].strip().lower()
            if media in ("application/sdp", "application/*", "*/*"):
                return True
    # An empty Accept header means "nothing"; RFC 3261 §20.1 treats an absent one as SDP.
    return False


def stamp_via(request: Request, source: Address) -> None:
    """§18.2.1 received, RFC 3581 rport: recorded in the Via every response copies."""
    vias = request.vias
    top = vias[0]
    if source.host != top.host or top.wants_rport:
        stamped = top.with_param("received", source.host)
        if top.wants_rport:
            stamped = stamped.with_param("rport", str(source.port))
        request.headers.set("via", ", ".join(str(v) for v in (stamped, *vias[1:])))


def response_destination(source: Address, via: Via | None) -> Address:
    """Where a response to a request from ``source`` goes (§18.2.2, RFC 3581).

    Streams: back on the connection the request came on. UDP: to the source IP (as if ``received``
    were set) and to the source port when the client asked for ``rport``, else the sent-by port.
    ``maddr`` is deliberately ignored: answering to an address the peer did not send from would make
    the bridge a reflector (see docs/decisions.md).
    """
    if source.transport is not Transport.UDP or via is None:
        return source
    if via.wants_rport:
        return source
    return Address(Transport.UDP, source.host, via.port or Transport.UDP.default_port)


def has_routing_headers(request: Request) -> bool:
    """Whether a response can be routed back: it needs a Via (it goes to the source address); the
    other headers are copied when present (RFC 4475 §3.3.1 expects 400 even without From/To)."""
    return bool(request.headers.get("via"))


def split_vias_safe(request: Request) -> Via | None:
    try:
        return request.top_via
    except RemoteProtocolError:
        return None


def at_capacity(retry_after: int) -> RemoteProtocolError:
    """503 for new work refused for capacity: try again in ``retry_after`` seconds (§21.5.4)."""
    return RemoteProtocolError(
        "at capacity",
        status_hint=503,
        extra_headers=(("Retry-After", str(retry_after)),),
    )


def stateless_response(
    exc: RemoteProtocolError, source: Address, request: Request | None, *, agent: str
) -> tuple[bytes, Address] | None:
    """The answer, outside any transaction, to what could not be parsed or checked, and where it
    goes; None when it cannot be routed or built. Its Warning names us ``agent`` and says why."""
    if request is None or request.method == "ACK" or not has_routing_headers(request):
        return None
    dest = response_destination(source, split_vias_safe(request))
    try:
        response = response_to(request, exc.status_hint, None, headers=exc.extra_headers)
    except RemoteProtocolError:
        # A header the response must copy (CSeq...) is itself unreadable: nothing to answer.
        return None
    response.headers.add("warning", f'399 {agent} "{_quote_safe(exc.reason)}"')
    return response.encode(), dest


def _quote_safe(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:120]


def _is_sips(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.scheme == "sips"


def check_sips(request: Request, source: Address) -> None:
    """RFC 3261 §26.2.2: a ``sips:`` Request-URI asks for TLS on every hop up to us. One that came
    over UDP or TCP already crossed a cleartext hop; serving it would make the scheme a lie. We do
    not serve ``sips:`` on those transports, hence 416 (RFC 3261 §8.2.2.1; docs/decisions.md)."""
    if source.transport is not Transport.TLS and _is_sips(request.uri):
        raise RemoteProtocolError("sips URI over a non-TLS transport", status_hint=416)


def wants_sips_contact(request: Request, source: Address) -> bool:
    """RFC 3261 §12.1.1: our Contact is a SIPS URI when the Request-URI, the top Record-Route or
    (with no Record-Route) the Contact of the request is one. Over TLS only: a ``sips:`` Contact
    asks peers to reach us over TLS, and :func:`check_sips` refuses the rest."""
    if source.transport is not Transport.TLS:
        return False
    try:
        routes = request.record_routes
        nearest = routes[:1] if routes else request.contacts[:1]
    except RemoteProtocolError:
        nearest = ()  # unreadable: the dialog layer answers for that; the Request-URI still counts
    return any(_is_sips(uri) for uri in (request.uri, *(n.uri for n in nearest)))
