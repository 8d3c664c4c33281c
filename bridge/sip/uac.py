"""The requests we start outside a dialog (RFC 3261 §8.1.1): what a new INVITE carries."""

from __future__ import annotations

from collections.abc import Callable

from .address import Transport
from .config import EndpointConfig
from .headers import CSeq, Headers
from .message import Request
from .uri import NameAddr, Uri


def initial_invite(
    config: EndpointConfig,
    token: Callable[[], str],
    uri: Uri,
    transport: Transport,
    *,
    from_: NameAddr,
    to: NameAddr,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
    content_type: str | None,
) -> Request:
    """A new call's INVITE (§13.2.1): fresh branch, From tag and Call-ID from ``token``."""
    h = Headers()
    h.add("via", str(config.via(transport, token())))
    h.add("max-forwards", "70")
    h.add("from", str(from_.with_tag(token())))
    h.add("to", str(to))
    h.add("call-id", token())
    h.add("cseq", str(CSeq(1, "INVITE")))
    h.add("contact", config.contact(transport))
    for name, value in headers:
        h.add(name, value)
    if body and content_type:
        h.add("content-type", content_type)
    return Request("INVITE", uri, h, body)
