"""What the endpoint keeps beside each transaction: where its messages go, the request and dialog it
belongs to, and the bytes of its last message (sent again on retransmission)."""

from __future__ import annotations

from dataclasses import dataclass

from .address import Address
from .dialog import DialogId
from .message import Request
from .transaction import ClientTransaction, ServerTransaction


@dataclass(slots=True, eq=False)
class ServerEntry:
    """A request we received, until its transaction ends."""

    tx: ServerTransaction
    request_id: int
    dest: Address
    source: Address
    local_tag: str
    seq: int
    """The request's CSeq number: an INVITE's 2xx awaits the ACK with this number."""
    origin: tuple[str, str, int, str] | None = None
    """Our key in ``Endpoint._origins`` (requests outside a dialog)."""
    dialog: DialogId | None = None
    final_sent: bool = False
    encoded: tuple[object, bytes] | None = None


@dataclass(slots=True, eq=False)
class ClientEntry:
    """A request we sent, until its transaction ends."""

    tx: ClientTransaction
    request_id: int
    dest: Address
    dialog: DialogId | None
    ack: bytes | None = None
    encoded: tuple[object, bytes] | None = None


def origin(request: Request) -> tuple[str, str, int, str]:
    """A request's key outside a dialog (Call-ID, From tag, CSeq, method), to spot merged requests
    (RFC 3261 §8.2.2.2)."""
    return (request.call_id, request.from_.tag or "", request.cseq.seq, request.method)
