"""The sans-IO SIP core: a user agent's transactions and dialogs (RFC 3261 and the extensions a UA
serving calls meets), SDP offer/answer, and the bodies it reads and writes. Bytes, time and commands
go in; bytes, deadlines and events come out. It does no I/O, reads no clock, and knows nothing of the
application that runs it: that application names it and says what it serves (:class:`EndpointConfig`).

The names below are its API, as h11's are: other layers import them from ``bridge.sip``. ``sdp``,
``offer_answer``, ``bodies`` and ``conference_info`` are public modules too, for their helpers and
constants.
"""

from . import bodies, conference_info, offer_answer, sdp
from .address import Address, Transport, host_text
from .config import EndpointConfig
from .dialog import DialogId
from .digest import AuthFailure, DigestAuthenticator
from .endpoint import Endpoint
from .errors import LocalProtocolError, RemoteProtocolError, SipError
from .events import (
    DialogConfirmed,
    DialogTerminated,
    EndReason,
    Event,
    FailureKind,
    GlareRetryDue,
    InviteCancelled,
    MessageRejected,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Retransmission,
)
from .headers import KNOWN_METHODS, METHODS
from .message import Message, Request, Response
from .parser import KEEPALIVE_PING, KEEPALIVE_PONG, StreamFramer, parse_message
from .rtpsession import AudioPeer, audio_peer, formats_for
from .sdp import Direction, MediaDescription, SessionDescription, parse_sdp
from .transaction import TimerConfig
from .uas import UasPolicy
from .uri import AbsoluteUri, NameAddr, SipUri, Uri, is_token, parse_name_addr, parse_uri

__all__ = [
    "KEEPALIVE_PING",
    "KEEPALIVE_PONG",
    "KNOWN_METHODS",
    "METHODS",
    "AbsoluteUri",
    "Address",
    "AudioPeer",
    "AuthFailure",
    "DialogConfirmed",
    "DialogId",
    "DialogTerminated",
    "DigestAuthenticator",
    "Direction",
    "EndReason",
    "Endpoint",
    "EndpointConfig",
    "Event",
    "FailureKind",
    "GlareRetryDue",
    "InviteCancelled",
    "LocalProtocolError",
    "MediaDescription",
    "Message",
    "MessageRejected",
    "NameAddr",
    "RemoteProtocolError",
    "Request",
    "RequestFailed",
    "RequestReceived",
    "Response",
    "ResponseReceived",
    "Retransmission",
    "SessionDescription",
    "SipError",
    "SipUri",
    "StreamFramer",
    "TimerConfig",
    "Transport",
    "UasPolicy",
    "Uri",
    "audio_peer",
    "bodies",
    "conference_info",
    "formats_for",
    "host_text",
    "is_token",
    "offer_answer",
    "parse_message",
    "parse_name_addr",
    "parse_sdp",
    "parse_uri",
    "sdp",
]
