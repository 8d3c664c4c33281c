"""Dialogs (RFC 3261 §12): identity, sequence numbers, route set and remote target.

A dialog is plain data with no I/O, so that a later version can keep it in a shared store. The endpoint
creates dialogs from dialog-forming requests and responses (INVITE, SUBSCRIBE) and builds every
in-dialog request through :meth:`Dialog.build_request`.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass
from enum import Enum

from .address import Address, Transport
from .errors import LocalProtocolError, RemoteProtocolError
from .headers import CSeq, Headers, Via
from .message import Request, Response
from .uri import NameAddr, SipUri, Uri, parse_uri


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Role(Enum):
    UAS = "uas"
    UAC = "uac"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID plus local and remote tags (RFC 3261 §12)."""

    call_id: str
    local_tag: str
    remote_tag: str

    def __str__(self) -> str:
        return f"{self.call_id};local={self.local_tag};remote={self.remote_tag}"


def _untagged(address: NameAddr) -> str:
    """``address`` as text without its tag, one string for all dialogs that share it: the calls of
    a meeting have the same To, an SBC's calls often the same From, and the tags are in the id."""
    params = tuple(p for p in address.params if p[0] != "tag")
    return sys.intern(str(NameAddr(address.uri, address.display_name, params)))


def _tagged(untagged: str, tag: str) -> str:
    return f"{untagged};tag={tag}" if tag else untagged  # RFC 2543 peers may have no tag


def _remote_target(message: Request | Response) -> Uri | None:
    contacts = message.contacts
    if len(contacts) > 1:
        raise RemoteProtocolError("dialog-forming message with more than one Contact")
    return contacts[0].uri if contacts else None


class Dialog:
    """One dialog. ``peer`` is the flow the dialog lives on: the address its requests arrived from.

    In-dialog requests carry the Request-URI and Route headers of §12.2.1.1 and go to
    :attr:`next_hop`: the first route of the route set (a proxy that record-routed), else ``peer``
    (the phone's NAT binding or its TCP connection, as a registrar facing NAT'd phones does).
    """

    __slots__ = (
        "_local",
        "_remote",
        "id",
        "local_contact",
        "local_seq",
        "peer",
        "remote_seq",
        "remote_target",
        "role",
        "route_set",
        "secure",
        "state",
    )

    def __init__(
        self,
        *,
        dialog_id: DialogId,
        role: Role,
        local_uri: NameAddr,
        remote_uri: NameAddr,
        remote_target: Uri | str,
        route_set: tuple[NameAddr, ...],
        local_seq: int | None,
        remote_seq: int | None,
        peer: Address,
        local_contact: str,
        secure: bool = False,
        state: DialogState = DialogState.EARLY,
    ) -> None:
        self.id = dialog_id
        self.role = role
        # Kept as the text we send in From, To and the Request-URI: a held call builds a request
        # rarely, and the parsed forms are several times the size (memory per dialog). The tags
        # are the id's.
        self._local = _untagged(local_uri)
        self._remote = _untagged(remote_uri)
        self.remote_target = str(remote_target)
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.peer = peer
        self.local_contact = local_contact
        self.secure = secure
        self.state = state

    def __repr__(self) -> str:
        return f"<Dialog {self.id} {self.role.value} {self.state.value}>"

    @property
    def local_uri(self) -> str:
        """Our address with our tag: From in the requests we send."""
        return _tagged(self._local, self.id.local_tag)

    @property
    def remote_uri(self) -> str:
        """The peer's address with its tag: To in the requests we send."""
        return _tagged(self._remote, self.id.remote_tag)

    @classmethod
    def for_uas(cls, request: Request, local_tag: str, peer: Address, local_contact: str) -> Dialog:
        """§12.1.1: the dialog a UAS creates when it answers ``request`` with a 1xx/2xx."""
        remote_tag = request.from_.tag
        if remote_tag is None:
            # RFC 2543 peers may omit the From tag; the empty tag still identifies the dialog.
            remote_tag = ""
        target = _remote_target(request) or request.from_.uri
        uri = request.uri
        return cls(
            dialog_id=DialogId(request.call_id, local_tag, remote_tag),
            role=Role.UAS,
            local_uri=request.to.with_tag(local_tag) if request.to.tag is None else request.to,
            remote_uri=request.from_,
            remote_target=target,
            route_set=request.record_routes,
            local_seq=None,  # "the local sequence number MUST be empty" until we send (§12.1.1)
            remote_seq=request.cseq.seq,
            peer=peer,
            local_contact=local_contact,
            secure=isinstance(uri, SipUri) and uri.scheme == "sips",
        )

    @classmethod
    def for_uac(
        cls, request: Request, response: Response, peer: Address, local_contact: str
    ) -> Dialog:
        """§12.1.2: the dialog a UAC creates from a 1xx (with To tag) or 2xx to ``request``."""
        remote_tag = response.to.tag
        if remote_tag is None:
            raise RemoteProtocolError("dialog-forming response without a To tag")
        local_tag = request.from_.tag
        if local_tag is None:
            raise LocalProtocolError("our request has no From tag")
        target = _remote_target(response) or response.to.uri
        return cls(
            dialog_id=DialogId(request.call_id, local_tag, remote_tag),
            role=Role.UAC,
            local_uri=request.from_,
            remote_uri=response.to,
            remote_target=target,
            route_set=tuple(reversed(response.record_routes)),
            local_seq=request.cseq.seq,
            remote_seq=None,
            peer=peer,
            local_contact=local_contact,
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
        )

    # -- requests we receive ---------------------------------------------------------------------
    def accept_remote_cseq(self, request: Request) -> bool:
        """§12.2.2: a CSeq lower than the last one is out of order (answer 500). ACK and CANCEL carry
        the CSeq of the INVITE they belong to and are not checked."""
        if request.method in ("ACK", "CANCEL"):
            return True
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            # Equal is a retransmission the transaction layer absorbs; reaching here means a new
            # request reused a number, which is as out of order as a lower one.
            return False
        self.remote_seq = seq
        return True

    def refresh_target(self, message: Request | Response) -> None:
        """Target refresh (§12.2): a re-INVITE or its 2xx may carry a new Contact."""
        target = _remote_target(message)
        if target is not None:
            self.remote_target = str(target)

    # -- requests we send ------------------------------------------------------------------------
    @property
    def next_hop(self) -> Address:
        """Where our in-dialog requests go (§12.2.1.1, §8.1.2): the first route when the route
        set has one that names an IP address, with its port and transport (RFC 3263 §4: UDP
        unless ``transport`` or ``sips:`` says otherwise); else ``peer``.

        A route naming a host name falls back to ``peer`` (this core does no DNS; the proxy that
        record-routed is, in practice, where the dialog's requests came from). Over a stream, a
        route naming the host the dialog's connection comes from reuses that connection: a proxy
        connects to us from an ephemeral port, not from the port its Record-Route names."""
        if not self.route_set or not isinstance(uri := self.route_set[0].uri, SipUri):
            return self.peer
        host = uri.host.strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return self.peer
        transport = _route_transport(uri)
        if transport is None:
            return self.peer
        if transport.reliable and transport is self.peer.transport and host == self.peer.host:
            return self.peer
        return Address(transport, host, uri.port or transport.default_port)

    def next_cseq(self) -> int:
        """§12.2.1.1: one more than the last; the first is chosen freely (we start at 1)."""
        self.local_seq = 1 if self.local_seq is None else self.local_seq + 1
        return self.local_seq

    def build_request(
        self,
        method: str,
        via: Via,
        *,
        cseq: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """An in-dialog request (§12.2.1.1). ACK passes the INVITE's ``cseq``; others take the next."""
        if self.state is DialogState.TERMINATED and method not in ("ACK", "BYE"):
            raise LocalProtocolError(f"{method} on a terminated dialog")
        seq = self.next_cseq() if cseq is None else cseq
        request_uri: Uri | str = self.remote_target
        routes = list(self.route_set)
        if routes and isinstance(routes[0].uri, SipUri) and not routes[0].uri.has_param("lr"):
            # Strict router: it goes in the Request-URI, the remote target goes last (§12.2.1.1).
            request_uri = routes[0].uri
            routes = [*routes[1:], NameAddr(parse_uri(self.remote_target))]
        h = Headers()
        h.add("via", str(via))
        h.add("max-forwards", "70")
        for route in routes:
            h.add("route", str(route))
        h.add("from", self.local_uri)
        h.add("to", self.remote_uri)
        h.add("call-id", self.id.call_id)
        h.add("cseq", str(CSeq(seq, method)))
        if method not in ("ACK", "CANCEL", "BYE"):
            h.add("contact", self.local_contact)
        for name, value in headers:
            h.add(name, value)
        if body and content_type:
            h.add("content-type", content_type)
        return Request(method, request_uri, h, body)


def _route_transport(uri: SipUri) -> Transport | None:
    """The transport a route URI asks for; None for one we do not serve (SCTP, WS)."""
    name = uri.transport
    if name is None:
        return Transport.TLS if uri.scheme == "sips" else Transport.UDP
    try:
        return Transport(name.lower())
    except ValueError:
        return None
