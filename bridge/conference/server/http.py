"""HTTP routes of the conference API: parse and validate, call ``Conference``, emit its events, answer.

Handlers are thin on purpose: the rules live in ``state``; here only JSON, auth headers and status
codes. The ``errors`` middleware turns ``ApiError`` into ``{"error", "message"}`` answers and any
unexpected exception into a logged 500, so client input never surfaces as a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from ..wire import SESSION_HEADER, GuestPolicy, Role
from . import fields
from .config import ServerConfig
from .errors import ApiError, BadRequest, Unauthorized
from .model import JSON, Caller, Event, Outcome
from .sessions import Sessions, session_id
from .state import Conference

log = structlog.get_logger("bridge.conference.server.http")


class Publisher(Protocol):
    """Sends events to the Socket.IO rooms, in order (``realtime.Realtime``, or
    ``media.MediaSync`` in front of it when the server has a media plane)."""

    async def publish(self, events: Sequence[Event]) -> None: ...

    def complete(self, outcome: Outcome) -> None:
        """Add what the publication learnt to the answer (a join's media endpoint)."""


CONFIG = web.AppKey("config", ServerConfig)
CONFERENCE = web.AppKey("conference", Conference)
PUBLISHER = web.AppKey("publisher", Publisher)
SESSIONS = web.AppKey("sessions", Sessions)

API = "/api/spaces/{space}"
MEETING = API + "/meetings/{meeting}"
ATTENDEES = MEETING + "/attendees"
ONE = ATTENDEES + "/{type}/{attendee}"


#: The answer to a request that hit a bug of ours: no details, and a hint that retrying is fine.
INTERNAL = ("internal", "the server failed; the request may be retried")


def error_body(code: str, message: str) -> JSON:
    """The contract's error object."""
    return {"error": code, "message": message}


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors for every refusal; a logged 500 (without details) for our own bugs."""
    try:
        return await handler(request)
    except ApiError as exc:
        # RFC 6750 §3: a 401 names the scheme the client should use.
        headers = {"WWW-Authenticate": 'Bearer realm="spaces"'} if exc.status == 401 else None
        return _error(exc.status, exc.code, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return _error(exc.status, code, f"{exc.reason}: {request.method} {request.path}")
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        return _error(500, *INTERNAL)


def caller_of(request: web.Request) -> Caller:
    """The caller named by ``Authorization: Bearer <token>``; 401 without a known token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    caller = request.app[CONFIG].caller(token.strip()) if scheme.lower() == "bearer" else None
    if caller is None:
        raise Unauthorized
    return caller


async def body_of(request: web.Request) -> fields.Body:
    """The JSON object body; 400 for anything else (bad UTF-8, bad JSON, an array…)."""
    try:
        raw = await request.read()
        value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", "bad_json") from exc
    return fields.body_object(value)


async def _answer(request: web.Request, outcome: Outcome, status: int = 200) -> web.StreamResponse:
    # Events go out before the answer: a client that acts on the answer has already been sent them.
    publisher = request.app[PUBLISHER]
    await publisher.publish(outcome.events)
    publisher.complete(outcome)
    if outcome.body is None:
        return web.Response(status=204)
    return web.json_response(outcome.body, status=status)


Params = Mapping[str, str]
#: What an operation answers: an outcome (events and body), or a list (the two listing routes).
Answer = Outcome | list[JSON]
#: One API operation: the conference, who calls, the path's parameters and the JSON body.
Operation = Callable[[Conference, Caller, Params, fields.Body], Answer]


@dataclass(frozen=True, slots=True)
class Route:
    """One route of the contract; ``status`` is the answer's status when it has a body."""

    method: str
    template: str
    operation: Operation
    status: int = 200
    reads_body: bool = True
    leased: bool = False
    """The attendee it creates is held by the caller's ``Spaces-Session``, if one is sent."""


def _ids(params: Params) -> tuple[str, str]:
    return params["space"], params["meeting"]


def _spaces(conference: Conference, caller: Caller, params: Params, body: fields.Body) -> Answer:
    return conference.spaces()


def _dial_in_status(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return Outcome(body=c.dial_in.status(caller))


def _dial_in(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    # In the body, not the path: IDs and PINs stay out of access logs and metric labels.
    return Outcome(
        body=c.dial_in.resolve(
            caller,
            fields.req_str(body, "dialInId", fields.MAX_DIGITS),
            fields.opt_str(body, "pin", fields.MAX_DIGITS),
        )
    )


def _active_meeting(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.active_meeting(caller, params["space"])


def _start_meeting(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.start_meeting(caller, params["space"])


def _get_meeting(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return Outcome(body=c.meeting(caller, *_ids(params)))


def _end_meeting(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.end_meeting(caller, *_ids(params))


def _settings(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.update_settings(
        caller,
        params["space"],
        prevent_unmuting=fields.opt_bool(body, "preventUnmuting"),
        mute_on_entry=fields.opt_bool(body, "muteOnEntry"),
        guest_policy=fields.opt_enum(body, "guestPolicy", GuestPolicy),
    )


def _join(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.join(
        caller,
        *_ids(params),
        attendee_type=fields.req_str(body, "attendeeType", fields.MAX_TYPE),
        display_name=fields.req_str(body, "displayName"),
        version=fields.opt_str(body, "version", fields.MAX_TYPE),
        guest=bool(fields.opt_bool(body, "guest")),
        role=fields.opt_enum(body, "role", Role),
        endpoint=fields.opt_str(body, "endpoint", fields.MAX_TYPE),
        media=fields.opt_media_offer(body, "media"),
    )


def _roster(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Answer:
    return c.roster(caller, *_ids(params))


def _leave(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.leave(caller, *_ids(params), params["type"], params["attendee"])


def _media_state(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.set_media(
        caller,
        *_ids(params),
        params["type"],
        params["attendee"],
        audio=fields.opt_bool(body, "audio"),
        video=fields.opt_bool(body, "video"),
        held=fields.opt_bool(body, "held"),
        media_session=fields.opt_str(body, "mdsrvSessionId"),
    )


def _talking(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    talking = fields.opt_bool(body, "talking")
    if talking is None:
        raise BadRequest("talking is required", "missing_field")
    return c.report_talking(
        caller, *_ids(params), params["type"], params["attendee"], talking=talking
    )


def _mute_all(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.mute_all(
        caller,
        *_ids(params),
        exclusions=fields.str_list(body, "exclusionList"),
        initiator=fields.opt_str(body, "attendeeId"),
    )


def _raise_hand(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    fields.permissions(body, "requestedPermissions")
    return c.raise_hand(
        caller,
        *_ids(params),
        attendee_id=fields.opt_str(body, "attendeeId"),
        attendee_type=fields.opt_str(body, "attendeeType", fields.MAX_TYPE),
    )


def _accept_hand(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    fields.permissions(body, "grantedPermissions")
    return c.accept_hand(
        caller,
        *_ids(params),
        fields.req_str(body, "attendeeId"),
        fields.opt_str(body, "attendeeType", fields.MAX_TYPE),
    )


def _lower_hand(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    fields.permissions(body, "rejectedPermissions")
    return c.lower_hand(
        caller,
        *_ids(params),
        fields.req_str(body, "attendeeId"),
        fields.opt_str(body, "attendeeType", fields.MAX_TYPE),
    )


def _request_admission(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.request_admission(
        caller,
        *_ids(params),
        fields.req_str(body, "attendeeId"),
        fields.opt_str(body, "attendeeType", fields.MAX_TYPE),
    )


def _allow(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.allow(
        caller,
        *_ids(params),
        fields.req_str(body, "attendeeId"),
        remember=bool(fields.opt_bool(body, "remember")),
    )


def _deny(c: Conference, caller: Caller, params: Params, body: fields.Body) -> Outcome:
    return c.deny(
        caller,
        *_ids(params),
        fields.req_str(body, "attendeeId"),
        remember=bool(fields.opt_bool(body, "remember")),
    )


#: Every route of the contract; fixed paths come before the ``{type}/{attendee}`` ones.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/spaces", _spaces, reads_body=False),
    Route("GET", "/api/dialin", _dial_in_status, reads_body=False),
    Route("POST", "/api/dialin", _dial_in),
    Route("GET", API + "/activemeeting", _active_meeting, reads_body=False),
    Route("POST", API + "/meetings", _start_meeting, 201, reads_body=False),
    Route("PATCH", API + "/settings", _settings),
    Route("GET", MEETING, _get_meeting, reads_body=False),
    Route("DELETE", MEETING, _end_meeting, reads_body=False),
    Route("POST", MEETING + "/muteall", _mute_all),
    Route("GET", ATTENDEES, _roster, reads_body=False),
    Route("POST", ATTENDEES, _join, 201, leased=True),
    Route("POST", ATTENDEES + "/raisedhands", _raise_hand),
    Route("POST", ATTENDEES + "/raisedhands/accept", _accept_hand),
    Route("POST", ATTENDEES + "/raisedhands/lower", _lower_hand),
    Route("POST", ATTENDEES + "/meetingpermissions", _request_admission, 202),
    Route("POST", ATTENDEES + "/meetingpermissions/allow", _allow),
    Route("POST", ATTENDEES + "/meetingpermissions/deny", _deny),
    Route("DELETE", ONE, _leave, reads_body=False),
    Route("POST", ONE + "/mediastate", _media_state),
    Route("POST", ONE + "/talking", _talking),
)


def _handler(route: Route) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        caller = caller_of(request)  # 401 before any 400
        session = session_id(request.headers.get(SESSION_HEADER)) if route.leased else None
        body = await body_of(request) if route.reads_body else {}
        answer = route.operation(request.app[CONFERENCE], caller, request.match_info, body)
        if isinstance(answer, list):
            return web.json_response(answer)
        sessions = request.app.get(SESSIONS)
        if session is not None and sessions is not None and answer.body is not None:
            # Before the events go out: a session that expires meanwhile takes this one too.
            params = request.match_info
            sessions.joined(caller, session, params["space"], params["meeting"], answer.body)
        return await _answer(request, answer, route.status)

    return handle


def add_routes(app: web.Application) -> None:
    """Register every route of the contract."""
    for route in ROUTES:
        app.router.add_route(route.method, route.template, _handler(route))
