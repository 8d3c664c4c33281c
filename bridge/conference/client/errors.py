"""The conference client's documented exception tree: each error says whose fault it is and whether
trying again can help, so callers never match on message text.

::

    SpacesError                        anything the client raises
    ├── TransportError                 no HTTP answer: the request may or may not have been applied
    │   ├── ConnectError               the server could not be reached (refused, reset, DNS, closed)
    │   └── RequestTimeout             no complete answer within the per-request timeout
    ├── InvalidResponse                a 2xx answer whose body is not what the API promises (server bug)
    └── ApiError (status, code, message)   the server answered with a refusal
        ├── BadRequest       400  our request was malformed (a bug on our side)
        ├── Unauthorized     401  missing or unknown token (configuration)
        ├── Forbidden        403  the token's role or ownership does not allow the action
        │   └── PreventUnmuting  403 "prevent_unmuting": unmute refused; raise the hand instead
        ├── NotFound         404  unknown space, meeting or attendee
        ├── Conflict         409  the action does not fit the current state
        │   └── MeetingEndedError  409 "meeting_ended": ask for the active meeting again
        └── ServerError      5xx  the server failed; idempotent calls were already retried

``ApiError`` itself is raised for any other status (405, 413, 429...). ``code`` is the short code of the
JSON error body (``{"error": code, "message": message}``), or ``"http_<status>"`` when the body is not
JSON, so a refusal keeps its machine-readable reason whatever proxy produced it.
"""

# The class names are the HTTP vocabulary (as in httpx and the server's own tree), not "...Error":
# ruff: noqa: N818

from __future__ import annotations


class SpacesError(Exception):
    """Base of every error raised by :mod:`bridge.conference.client`."""


class TransportError(SpacesError):
    """The exchange failed below HTTP; ``route`` is the route template that was being called.

    ``maybe_applied`` is false only when the request certainly never reached the server (the TCP
    connection could not be made); otherwise the server may have applied it, and a caller that
    needs to know must read the state back.
    """

    def __init__(self, message: str, *, route: str = "", maybe_applied: bool = True) -> None:
        super().__init__(message)
        self.route = route
        self.maybe_applied = maybe_applied


class ConnectError(TransportError):
    """The server could not be reached, or closed the connection before answering."""


class RequestTimeout(TransportError):
    """No complete answer arrived within the per-request timeout."""


class InvalidResponse(SpacesError):
    """The server answered 2xx with a body that does not match the API contract."""


class ApiError(SpacesError):
    """The server refused the request with an HTTP error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BadRequest(ApiError):
    """400: the request body or its fields were malformed."""


class Unauthorized(ApiError):
    """401: the token is missing or unknown to the server."""


class Forbidden(ApiError):
    """403: the role or ownership of the token does not allow the action; ``code`` says which rule."""


class PreventUnmuting(Forbidden):
    """403 ``prevent_unmuting``: the space prevents unmuting and the attendee has no accepted hand."""


class NotFound(ApiError):
    """404: unknown space, meeting or attendee."""


class Conflict(ApiError):
    """409: the action conflicts with the current state (meeting ended, attendee not in the lobby...)."""


class MeetingEndedError(Conflict):
    """409 ``meeting_ended``: the meeting is over."""


class ServerError(ApiError):
    """5xx: the server (or a gateway in front of it) failed."""


def is_refusal(exc: SpacesError) -> bool:
    """Whether the server answered with a decision (4xx), as opposed to failing (5xx, timeout,
    connection): a refusal stands, a failure may go away if the request is tried later."""
    return isinstance(exc, ApiError) and not isinstance(exc, ServerError)


# Subclasses chosen by (status, code) first, then by status alone.
_BY_CODE: dict[tuple[int, str], type[ApiError]] = {
    (403, "prevent_unmuting"): PreventUnmuting,
    (409, "meeting_ended"): MeetingEndedError,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


def api_error(status: int, code: str, message: str) -> ApiError:
    """Build the most specific :class:`ApiError` for an HTTP error answer."""
    cls = _BY_CODE.get((status, code)) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if 500 <= status <= 599 else ApiError
    return cls(status, code, message)
