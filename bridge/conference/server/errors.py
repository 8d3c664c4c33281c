"""The conference server's documented error tree: every refusal says whose fault it is and what the
HTTP answer is, so adapters never match on message text.

::

    ApiError (status, code, message)
    ├── BadRequest       400  malformed JSON, missing field, wrong type or value
    ├── Unauthorized     401  missing or unknown token
    ├── Forbidden        403  the caller's role or ownership does not allow the action
    │   ├── PreventUnmuting  403 "prevent_unmuting": unmute refused by the space setting
    │   └── GuestDenied      403 "guest_denied": the space's guest policy is ALWAYS_DENY
    ├── NotFound         404  unknown space, meeting or attendee
    └── Conflict         409  the action does not fit the current state
        └── MeetingEnded     409 "meeting_ended"
"""

from __future__ import annotations

# The leaf names follow the HTTP reason phrases (BadRequest, NotFound…) rather than an "Error" suffix:
# handlers read them as the answer they become.


class ApiError(Exception):
    """A refusal of a client's request, answered as JSON ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BadRequest(ApiError):  # noqa: N818  (named after the HTTP status)
    """400: the request body or its fields are malformed."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(400, code, message)


class Unauthorized(ApiError):  # noqa: N818  (named after the HTTP status)
    """401: no token, or a token the server does not know."""

    def __init__(self, message: str = "a valid bearer token is required") -> None:
        super().__init__(401, "unauthorized", message)


class Forbidden(ApiError):  # noqa: N818  (named after the HTTP status)
    """403: the token's role, or its ownership of the attendee, does not allow the action."""

    def __init__(self, message: str, code: str = "forbidden") -> None:
        super().__init__(403, code, message)


class PreventUnmuting(Forbidden):
    """403 ``prevent_unmuting``: the space prevents unmuting and the attendee has no accepted hand."""

    def __init__(self, attendee_id: str) -> None:
        super().__init__(
            f"attendee {attendee_id} may not unmute: the space prevents unmuting;"
            " raise the hand and wait for a moderator to accept it",
            "prevent_unmuting",
        )


class GuestDenied(Forbidden):
    """403 ``guest_denied``: the space does not let guests in."""

    def __init__(self, space_id: str) -> None:
        super().__init__(f"space {space_id} does not admit guests", "guest_denied")


class NotFound(ApiError):  # noqa: N818  (named after the HTTP status)
    """404: unknown space, meeting or attendee."""

    def __init__(self, message: str, code: str = "not_found") -> None:
        super().__init__(404, code, message)


class Conflict(ApiError):  # noqa: N818  (named after the HTTP status)
    """409: the action conflicts with the current state (ended meeting, attendee not in the lobby…)."""

    def __init__(self, message: str, code: str = "conflict") -> None:
        super().__init__(409, code, message)


class MeetingEnded(Conflict):
    """409 ``meeting_ended``: the meeting is over; ask for the active meeting again."""

    def __init__(self, meeting_id: str) -> None:
        super().__init__(f"meeting {meeting_id} has ended", "meeting_ended")
