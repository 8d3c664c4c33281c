"""How the endpoint presents itself and what it serves: its configuration, and the Via and Contact
it derives from it for the messages it writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .address import Transport, host_text
from .headers import Via
from .transaction import TimerConfig
from .uas import UasPolicy


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """How the endpoint presents itself and what it serves."""

    local: Mapping[Transport, tuple[str, int]] = field(default_factory=dict)
    """Host and port we advertise in Via and Contact, per transport."""
    policy: UasPolicy = field(default_factory=UasPolicy)
    """The RFC 3261 §8.2 checks: methods, extensions, body types."""
    timers: TimerConfig = field(default_factory=TimerConfig)
    """T1, T2, T4 (RFC 3261 Table 4)."""
    max_transactions: int = 50_000
    """Open server transactions before new requests get 503. Each holds a request and its response
    for up to 32 s (Timer H/J), so this bounds memory under an INVITE flood to tens of MB."""
    max_dialogs: int = 60_000
    """Dialogs before new INVITEs get 503: one per call, sized above the 50,000-call target."""
    retry_after: int = 5
    """Seconds in Retry-After when we refuse for capacity."""
    agent: str = "-"
    """Our name where SIP and SDP carry one: the warn-agent of our stateless answers' Warning
    (RFC 3261 §20.43) and the username of our SDP origins (RFC 4566 §5.2), a token either way.
    ``-`` is SDP's "no user": the application that runs the endpoint names it."""
    _contacts: dict[tuple[Transport, bool], str] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    """Contacts written so far: each dialog keeps its Contact, and they are all the same few."""

    def address(self, transport: Transport) -> tuple[str, int]:
        """The host and port we advertise on ``transport``."""
        return self.local.get(transport, ("127.0.0.1", transport.default_port))

    def via(self, transport: Transport, token: str) -> Via:
        """The Via of a request we send on ``transport``; ``token`` makes its branch unique."""
        host, port = self.address(transport)
        host = host_text(host)
        branch = "z9hG4bK" + token
        return Via(transport.via_name, host, port, (("branch", branch), ("rport", None)))

    def contact(self, transport: Transport, *, secure: bool = False) -> str:
        """Our Contact on ``transport``; ``secure`` for a ``sips:`` one (RFC 3261 §12.1.1)."""
        contact = self._contacts.get((transport, secure))
        if contact is None:
            contact = self._contacts[transport, secure] = self._write_contact(transport, secure)
        return contact

    def _write_contact(self, transport: Transport, secure: bool) -> str:
        host, port = self.address(transport)
        host = host_text(host)
        if secure:
            return f"<sips:{host}:{port}>"  # sips means TLS; RFC 5630 deprecates transport=tls
        suffix = "" if transport is Transport.UDP else f";transport={transport.value}"
        return f"<sip:{host}:{port}{suffix}>"
