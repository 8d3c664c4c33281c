"""Events the endpoint reports to its user (the call layer): one closed set, frozen values.

Dispatch with ``match`` and ``typing.assert_never`` so that a new event is a type error until handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .address import Address
from .dialog import DialogId
from .message import Request, Response


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request the user must answer with :meth:`Endpoint.respond` (INVITE, re-INVITE, INFO,
    OPTIONS, SUBSCRIBE, NOTIFY, unknown-to-the-core methods). ``dialog`` is set for in-dialog ones.
    BYE, CANCEL and ACK are handled by the endpoint and reported by the events below."""

    request_id: int
    request: Request
    source: Address
    dialog: DialogId | None


@dataclass(frozen=True, slots=True)
class InviteCancelled:
    """The caller sent CANCEL: the endpoint answered 200 to it and 487 to the INVITE."""

    request_id: int
    request: Request


@dataclass(frozen=True, slots=True)
class DialogConfirmed:
    """The ACK for our 2xx to an INVITE or re-INVITE arrived. ``ack`` may carry an SDP answer."""

    dialog: DialogId
    ack: Request


class EndReason(Enum):
    BYE_RECEIVED = "bye"  # the peer hung up; the endpoint answered 200
    BYE_SENT = "bye-sent"  # we hung up
    NO_ACK = "no-ack"  # our 2xx was never acknowledged (§13.3.1.4); the endpoint sent BYE
    REJECTED = "rejected"  # a final non-2xx answer ended an early dialog
    TIMEOUT = "timeout"  # an in-dialog request timed out or got 408/481 (§12.2.1.2)
    FORGOTTEN = "forgotten"  # ended by the user of the endpoint (a finished subscription)


@dataclass(frozen=True, slots=True)
class DialogTerminated:
    dialog: DialogId
    reason: EndReason
    request: Request | None = None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response to a request we sent (``request_id`` from :meth:`Endpoint.send_in_dialog`)."""

    request_id: int
    response: Response
    dialog: DialogId | None


class FailureKind(Enum):
    TIMEOUT = "timeout"
    TRANSPORT = "transport"


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """A request we sent got no final response (Timer B/F) or could not be sent."""

    request_id: int
    kind: FailureKind
    dialog: DialogId | None


@dataclass(frozen=True, slots=True)
class GlareRetryDue:
    """Our re-INVITE got 491; the randomised wait of RFC 3261 §14.1 is over: send the current state."""

    dialog: DialogId


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A message we could not accept. ``status`` is what we answered (None: dropped)."""

    source: Address
    reason: str
    status: int | None


@dataclass(frozen=True, slots=True)
class Retransmission:
    """A retransmitted request was absorbed or answered from the transaction's cached response."""

    source: Address
    method: str


Event = (
    RequestReceived
    | InviteCancelled
    | DialogConfirmed
    | DialogTerminated
    | ResponseReceived
    | RequestFailed
    | GlareRetryDue
    | MessageRejected
    | Retransmission
)
