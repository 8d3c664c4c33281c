"""Errors of the SIP core, split by whose fault they are (as h11 does).

- :class:`LocalProtocolError`: *we* misused the API (sent a response twice, built a request with no
  Call-ID). A bug in the caller; never caused by a peer.
- :class:`RemoteProtocolError`: the *peer* sent something we cannot accept. ``status_hint`` says what a
  UAS should answer when the message is a request whose response can be routed (400, 416, 420, 481,
  482, 505, 513...); responses that fail are dropped and counted.

Protocol failures never escape into the event loop: the endpoint turns them into responses or events.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by :mod:`bridge.sip`."""


class LocalProtocolError(SipError):
    """The caller used the SIP core in a way the protocol forbids."""


class RemoteProtocolError(SipError):
    """A peer sent bytes or a message that we reject.

    ``status_hint`` is the final response a UAS should send for a request. ``partial`` is the message as
    far as it could be parsed (a :class:`bridge.sip.message.Message`; typed ``object`` so that this
    module imports nothing and every other module may import it): when it has Via, From, To, Call-ID
    and CSeq, a response can be routed.
    ``extra_headers`` are headers the response must carry (``Unsupported`` for 420, ``Accept`` for 415).
    """

    def __init__(
        self,
        reason: str,
        *,
        status_hint: int = 400,
        partial: object = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint
        self.partial = partial
        self.extra_headers = extra_headers
