"""HTTP routes of the conference API: parse and validate, call ``Conference``, emit its events, answer.

Handlers are thin on purpose: the rules live in ``state``; here only JSON, auth headers and status
codes. The ``errors`` middleware turns ``ApiError`` into ``{"error", "message"}`` answers and any
unexpected exception into a logged 500, so client input never surfaces as a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from . import fields
from .config import ServerConfig
from .errors import ApiError, BadRequest, Unauthorized
from .model import Caller, Event, GuestPolicy, Outcome, Role
from .state import Conference

log = structlog.get_logger("bridge.server.http")


class Publisher(Protocol):
    """Sends events to the Socket.IO rooms, in order (``realtime.Realtime``)."""

    async def publish(self, events: Sequence[Event]) -> None: ...


CONFIG = web.AppKey("config", ServerConfig)
CONFERENCE = web.AppKey("conference", Conference)
PUBLISHER = web.AppKey("publisher", Publisher)

API = "/api/spaces/{space}"
MEETING = API + "/meetings/{meeting}"
ATTENDEES = MEETING + "/attendees"
ONE = ATTENDEES + "/{type}/{attendee}"


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


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
        return _error(500, "internal", "the server failed; the request may be retried")


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
    await request.app[PUBLISHER].publish(outcome.events)
    if outcome.body is None:
        return web.Response(status=204)
    return web.json_response(outcome.body, status=status)


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["space"], request.match_info["meeting"]


async def spaces(request: web.Request) -> web.StreamResponse:
    caller_of(request)
    return web.json_response(request.app[CONFERENCE].spaces())


async def active_meeting(request: web.Request) -> web.StreamResponse:
    outcome = request.app[CONFERENCE].active_meeting(
        caller_of(request), request.match_info["space"]
    )
    return await _answer(request, outcome)


async def start_meeting(request: web.Request) -> web.StreamResponse:
    outcome = request.app[CONFERENCE].start_meeting(caller_of(request), request.match_info["space"])
    return await _answer(request, outcome, 201)


async def get_meeting(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[CONFERENCE].meeting(caller_of(request), *_ids(request)))


async def end_meeting(request: web.Request) -> web.StreamResponse:
    outcome = request.app[CONFERENCE].end_meeting(caller_of(request), *_ids(request))
    return await _answer(request, outcome)


async def patch_settings(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    outcome = request.app[CONFERENCE].update_settings(
        caller,
        request.match_info["space"],
        prevent_unmuting=fields.opt_bool(body, "preventUnmuting"),
        mute_on_entry=fields.opt_bool(body, "muteOnEntry"),
        guest_policy=fields.opt_enum(body, "guestPolicy", GuestPolicy),
    )
    return await _answer(request, outcome)


async def join(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    outcome = request.app[CONFERENCE].join(
        caller,
        *_ids(request),
        attendee_type=fields.req_str(body, "attendeeType", fields.MAX_TYPE),
        display_name=fields.req_str(body, "displayName"),
        version=fields.opt_str(body, "version", fields.MAX_TYPE),
        guest=bool(fields.opt_bool(body, "guest")),
        role=fields.opt_enum(body, "role", Role),
        endpoint=fields.opt_str(body, "endpoint", fields.MAX_TYPE),
    )
    return await _answer(request, outcome, 201)


async def roster(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[CONFERENCE].roster(caller_of(request), *_ids(request)))


async def leave(request: web.Request) -> web.StreamResponse:
    info = request.match_info
    outcome = request.app[CONFERENCE].leave(
        caller_of(request), *_ids(request), info["type"], info["attendee"]
    )
    return await _answer(request, outcome)


async def media_state(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    info = request.match_info
    outcome = request.app[CONFERENCE].set_media(
        caller,
        *_ids(request),
        info["type"],
        info["attendee"],
        audio=fields.opt_bool(body, "audio"),
        video=fields.opt_bool(body, "video"),
        held=fields.opt_bool(body, "held"),
        media_session=fields.opt_str(body, "mdsrvSessionId"),
    )
    return await _answer(request, outcome)


async def mute_all(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    outcome = request.app[CONFERENCE].mute_all(
        caller,
        *_ids(request),
        exclusions=fields.str_list(body, "exclusionList"),
        initiator=fields.opt_str(body, "attendeeId"),
    )
    return await _answer(request, outcome)


async def raise_hand(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    fields.permissions(body, "requestedPermissions")
    outcome = request.app[CONFERENCE].raise_hand(
        caller,
        *_ids(request),
        attendee_id=fields.opt_str(body, "attendeeId"),
        attendee_type=fields.opt_str(body, "attendeeType", fields.MAX_TYPE),
    )
    return await _answer(request, outcome)


async def accept_hand(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    fields.permissions(body, "grantedPermissions")
    outcome = request.app[CONFERENCE].accept_hand(
        caller,
        *_ids(request),
        fields.req_str(body, "attendeeId"),
        fields.opt_str(body, "attendeeType", fields.MAX_TYPE),
    )
    return await _answer(request, outcome)


async def lower_hand(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    fields.permissions(body, "rejectedPermissions")
    outcome = request.app[CONFERENCE].lower_hand(
        caller,
        *_ids(request),
        fields.req_str(body, "attendeeId"),
        fields.opt_str(body, "attendeeType", fields.MAX_TYPE),
    )
    return await _answer(request, outcome)


async def request_admission(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    outcome = request.app[CONFERENCE].request_admission(
        caller,
        *_ids(request),
        fields.req_str(body, "attendeeId"),
        fields.opt_str(body, "attendeeType", fields.MAX_TYPE),
    )
    return await _answer(request, outcome, 202)


async def allow(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    outcome = request.app[CONFERENCE].allow(
        caller,
        *_ids(request),
        fields.req_str(body, "attendeeId"),
        remember=bool(fields.opt_bool(body, "remember")),
    )
    return await _answer(request, outcome)


async def deny(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    body = await body_of(request)
    outcome = request.app[CONFERENCE].deny(
        caller,
        *_ids(request),
        fields.req_str(body, "attendeeId"),
        remember=bool(fields.opt_bool(body, "remember")),
    )
    return await _answer(request, outcome)


def add_routes(app: web.Application) -> None:
    """Register every route of the contract (fixed paths before the ``{type}/{attendee}`` ones)."""
    app.router.add_get("/api/spaces", spaces)
    app.router.add_get(API + "/activemeeting", active_meeting)
    app.router.add_post(API + "/meetings", start_meeting)
    app.router.add_patch(API + "/settings", patch_settings)
    app.router.add_get(MEETING, get_meeting)
    app.router.add_delete(MEETING, end_meeting)
    app.router.add_post(MEETING + "/muteall", mute_all)
    app.router.add_get(ATTENDEES, roster)
    app.router.add_post(ATTENDEES, join)
    app.router.add_post(ATTENDEES + "/raisedhands", raise_hand)
    app.router.add_post(ATTENDEES + "/raisedhands/accept", accept_hand)
    app.router.add_post(ATTENDEES + "/raisedhands/lower", lower_hand)
    app.router.add_post(ATTENDEES + "/meetingpermissions", request_admission)
    app.router.add_post(ATTENDEES + "/meetingpermissions/allow", allow)
    app.router.add_post(ATTENDEES + "/meetingpermissions/deny", deny)
    app.router.add_delete(ONE, leave)
    app.router.add_post(ONE + "/mediastate", media_state)
