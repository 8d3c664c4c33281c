"""HTTP client of the conference server API (docs/conference-api.md).

One keep-alive :class:`aiohttp.ClientSession` per client, a timeout per request, and bounded retries
with jittered exponential backoff for idempotent calls only (GET, DELETE, the settings PATCH): a POST
that timed out may have been applied, and applying a mute-all or a raised hand twice is not harmless.
Answers become frozen values from :mod:`bridge.conference.client.models`; failures become the
exception tree of :mod:`bridge.conference.client.errors`.

Latency of every attempt goes to an optional ``on_request(route_template, status, seconds)`` observer
(``status`` is ``None`` when no answer came), so metrics stay in the adapter that owns them.
"""

from __future__ import annotations

import asyncio
import json
import random as _random
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypeVar
from urllib.parse import quote

import aiohttp
import structlog

from ..wire import SESSION_HEADER, MediaOffer, Permission
from .errors import (
    ConnectError,
    InvalidResponse,
    MeetingEndedError,
    NotFound,
    RequestTimeout,
    SpacesError,
    TransportError,
    api_error,
)
from .models import (
    DialInResult,
    GuestPolicy,
    JoinResult,
    MediaStateResult,
    Meeting,
    MeetingDetails,
    PayloadError,
    Role,
    RosterEntry,
    Settings,
    flag,
    items,
    obj,
    read_dial_in,
    read_join_result,
    read_media_state_result,
    read_meeting,
    read_meeting_details,
    read_roster,
    read_settings,
)
from .session import process_session

__all__ = ["API_VERSION", "RequestObserver", "SpacesClient"]

T = TypeVar("T")

log = structlog.get_logger("bridge.conference.client")

API_VERSION: Final = "1.1"
"""Sent as ``accept-version``: the bridge acts as a modern client on behalf of every phone."""

RequestObserver = Callable[[str, int | None, float], None]
"""``on_request(route_template, status, seconds)``, called once per attempt."""

# Gateway and overload answers: the request was not applied, or applying it again changes nothing
# (the call is idempotent), so trying again is safe and often succeeds.
_RETRY_STATUSES: Final = frozenset({502, 503, 504})

# Route templates, used as metric labels: low-cardinality, ids never appear in them.
_MEETING = "/api/spaces/:spaceId/meetings/:meetingId"
_ATTENDEES = _MEETING + "/attendees"
_ATTENDEE = _ATTENDEES + "/:attendeeType/:attendeeId"


def _segment(value: str) -> str:
    """Quote an opaque id as one path segment, so that ``/`` or ``?`` in it cannot change the route."""
    return quote(value, safe="")


class LocalServer(Protocol):
    """A conference server in this process, answering API calls as its HTTP side would."""

    async def request(
        self, method: str, path: str, token: str, body: Mapping[str, object] | None
    ) -> tuple[int, object]: ...


class SpacesClient:
    """Client of one conference server, authenticated by one bearer token.

    Use as ``async with SpacesClient(...) as client:`` or call :meth:`close` when done; the session
    is created on first use (it must be made inside the running loop).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        random: Callable[[], float] = _random.random,
        backoff: float = 0.2,
        backoff_max: float = 2.0,
        on_request: RequestObserver | None = None,
        local: LocalServer | None = None,
        session: str | None = None,
    ) -> None:
        """``timeout`` bounds each attempt (seconds); ``retries`` is how many more attempts an
        idempotent call gets; the n-th retry waits ``random() * min(backoff_max, backoff * 2**n)``
        ("full jitter", so that bridges restarted together do not retry in step). ``local``: a
        server in this process, called directly instead of over HTTP. ``session``: sent as
        ``Spaces-Session`` (default: this process's id, shared with its subscription)."""
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self._base = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "accept-version": API_VERSION,
            "Accept": "application/json",
            SESSION_HEADER: session or process_session(),
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = retries
        self._random = random
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._on_request = on_request
        self._local = local
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the session now (optional: the first request does it)."""
        self._ensure_session()

    async def close(self) -> None:
        """Close the session and its keep-alive connections. The client cannot be used after."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("SpacesClient is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    # --- meetings ----------------------------------------------------------------------------------

    async def active_meeting(self, space_id: str) -> Meeting:
        """The space's active meeting (the server starts one when the space auto-starts)."""
        body = await self._call(
            "GET",
            "/api/spaces/:spaceId/activemeeting",
            f"/api/spaces/{_segment(space_id)}/activemeeting",
            idempotent=True,
        )
        return _read(read_meeting, body)

    async def meeting(self, space_id: str, meeting_id: str) -> MeetingDetails:
        """The meeting with its roster, lobby and settings."""
        body = await self._call(
            "GET", _MEETING, self._meeting_path(space_id, meeting_id), idempotent=True
        )
        return _read(read_meeting_details, body)

    async def roster(self, space_id: str, meeting_id: str) -> tuple[RosterEntry, ...]:
        body = await self._call(
            "GET",
            _ATTENDEES,
            self._meeting_path(space_id, meeting_id) + "/attendees",
            idempotent=True,
        )
        return _read(read_roster, body)

    async def end_meeting(self, space_id: str, meeting_id: str) -> None:
        """End the meeting for everyone (moderator). An already ended meeting is success."""
        await self._call(
            "DELETE",
            _MEETING,
            self._meeting_path(space_id, meeting_id),
            idempotent=True,
            gone_ok=True,
            ended_ok=True,
        )

    async def update_settings(
        self,
        space_id: str,
        *,
        prevent_unmuting: bool | None = None,
        mute_on_entry: bool | None = None,
        guest_policy: GuestPolicy | None = None,
    ) -> Settings:
        """Change some settings of the space (moderator); returns all of them after the change."""
        changes: dict[str, Any] = {}
        if prevent_unmuting is not None:
            changes["preventUnmuting"] = prevent_unmuting
        if mute_on_entry is not None:
            changes["muteOnEntry"] = mute_on_entry
        if guest_policy is not None:
            changes["guestPolicy"] = GuestPolicy(guest_policy).value
        body = await self._call(
            "PATCH",
            "/api/spaces/:spaceId/settings",
            f"/api/spaces/{_segment(space_id)}/settings",
            json_body=changes,
            idempotent=True,  # it sets values, so applying it twice gives the same settings
        )
        return _read(read_settings, body)

    # --- dial-in -----------------------------------------------------------------------------------

    async def dial_in_available(self) -> bool:
        """Whether the server resolves dial-in IDs: False when it has none, or has no such route
        (a server without dial-in answers 404)."""
        try:
            body = await self._call("GET", "/api/dialin", "/api/dialin", idempotent=True)
        except NotFound:
            return False
        return _read(lambda value: flag(obj(value, "dial-in status"), "available"), body)

    async def dial_in(self, dial_in_id: str, pin: str | None = None) -> DialInResult:
        """The space ``dial_in_id`` names, and whether ``pin`` is its host PIN; ``NotFound`` with
        code ``dialin_not_found`` for an unknown ID. In the body, never the path: the digits stay
        out of logs and metric labels."""
        payload: dict[str, Any] = {"dialInId": dial_in_id}
        if pin is not None:
            payload["pin"] = pin
        # A lookup changes nothing on the server: retrying it is safe.
        body = await self._call(
            "POST", "/api/dialin", "/api/dialin", json_body=payload, idempotent=True
        )
        return _read(read_dial_in, body)

    # --- attendees ---------------------------------------------------------------------------------

    async def join(
        self,
        space_id: str,
        meeting_id: str,
        *,
        attendee_type: str,
        display_name: str,
        version: str | None,
        guest: bool,
        role: Role | None = None,
        endpoint: str | None = None,
        media: MediaOffer | None = None,
    ) -> JoinResult:
        """Create an attendee. ``version`` is the client's (the bridge joins as ``1.1``); ``role``
        is only for a phone the bridge authenticated as a moderator; ``endpoint`` tells consoles
        what the attendee really is (``sip/legacy``, ``sip/1.1``); ``media`` where the bridge
        receives the attendee's meeting audio (the answer's ``media`` says where to send it)."""
        payload: dict[str, Any] = {
            "attendeeType": attendee_type,
            "displayName": display_name,
            "version": version,
            "guest": guest,
        }
        if role is not None:
            payload["role"] = Role(role).value
        if endpoint is not None:
            payload["endpoint"] = endpoint
        if media is not None:
            payload["media"] = media.to_json()
        body = await self._call(
            "POST",
            _ATTENDEES,
            self._meeting_path(space_id, meeting_id) + "/attendees",
            json_body=payload,
        )
        return _read(read_join_result, body)

    async def leave(
        self, space_id: str, meeting_id: str, attendee_type: str, attendee_id: str
    ) -> None:
        """Remove the attendee. An ended meeting counts as left; so does an attendee already gone
        when an earlier attempt of this call may have removed it."""
        await self._call(
            "DELETE",
            _ATTENDEE,
            self._attendee_path(space_id, meeting_id, attendee_type, attendee_id),
            idempotent=True,
            gone_ok=True,
            ended_ok=True,
        )

    async def set_media_state(
        self,
        space_id: str,
        meeting_id: str,
        attendee_type: str,
        attendee_id: str,
        *,
        audio: bool | None = None,
        video: bool | None = None,
        held: bool | None = None,
    ) -> MediaStateResult:
        """Change an attendee's media state; :class:`~bridge.conference.client.errors.PreventUnmuting` when an
        unmute is refused by the space."""
        payload = {
            key: value
            for key, value in (("audio", audio), ("video", video), ("held", held))
            if value is not None
        }
        body = await self._call(
            "POST",
            _ATTENDEE + "/mediastate",
            self._attendee_path(space_id, meeting_id, attendee_type, attendee_id) + "/mediastate",
            json_body=payload,
        )
        return _read(read_media_state_result, body)

    async def report_talking(
        self,
        space_id: str,
        meeting_id: str,
        attendee_type: str,
        attendee_id: str,
        *,
        talking: bool,
    ) -> None:
        """Say that an attendee the bridge hears (a phone) started or stopped talking, for the
        consoles' speaking indicators."""
        await self._call(
            "POST",
            _ATTENDEE + "/talking",
            self._attendee_path(space_id, meeting_id, attendee_type, attendee_id) + "/talking",
            json_body={"talking": talking},
        )

    async def mute_all(
        self,
        space_id: str,
        meeting_id: str,
        exclusion_list: tuple[str, ...] | list[str] = (),
        *,
        initiator: str | None = None,
    ) -> tuple[str, ...]:
        """Mute everyone but ``exclusion_list`` and the initiator; returns the ids it muted.
        A bridge token names its own moderator attendee as ``initiator``."""
        payload: dict[str, Any] = {"exclusionList": list(exclusion_list)}
        if initiator is not None:
            payload["attendeeId"] = initiator
        body = await self._call(
            "POST",
            _MEETING + "/muteall",
            self._meeting_path(space_id, meeting_id) + "/muteall",
            json_body=payload,
        )

        def muted(value: object) -> tuple[str, ...]:
            ids = items(obj(value, "muteall result"), "muted")
            if not all(isinstance(i, str) for i in ids):
                raise PayloadError("'muted': expected a list of attendee ids")
            return tuple(ids)

        return _read(muted, body)

    # --- hands -------------------------------------------------------------------------------------

    async def raise_hand(
        self, space_id: str, meeting_id: str, attendee_id: str, attendee_type: str
    ) -> None:
        """Ask for permission to unmute on the attendee's behalf (idempotent on the server)."""
        meeting = self._meeting_path(space_id, meeting_id)
        await self._hand("", "requestedPermissions", meeting, attendee_id, attendee_type)

    async def accept_hand(
        self, space_id: str, meeting_id: str, attendee_id: str, attendee_type: str
    ) -> None:
        """Grant the raised hand (moderator); the attendee may then unmute itself."""
        meeting = self._meeting_path(space_id, meeting_id)
        await self._hand("/accept", "grantedPermissions", meeting, attendee_id, attendee_type)

    async def lower_hand(
        self, space_id: str, meeting_id: str, attendee_id: str, attendee_type: str
    ) -> None:
        """Lower the hand: a rejection by a moderator, or a withdrawal by the attendee itself."""
        meeting = self._meeting_path(space_id, meeting_id)
        await self._hand("/lower", "rejectedPermissions", meeting, attendee_id, attendee_type)

    async def _hand(
        self, action: str, permissions_key: str, meeting: str, attendee_id: str, attendee_type: str
    ) -> None:
        await self._call(
            "POST",
            _ATTENDEES + "/raisedhands" + action,
            meeting + "/attendees/raisedhands" + action,
            json_body={
                permissions_key: [Permission.UNMUTE],
                "attendeeId": attendee_id,
                "attendeeType": attendee_type,
            },
        )

    # --- lobby -------------------------------------------------------------------------------------

    async def request_permission(
        self, space_id: str, meeting_id: str, attendee_id: str, attendee_type: str
    ) -> None:
        """Put a waiting guest's request to join before the moderators."""
        await self._call(
            "POST",
            _ATTENDEES + "/meetingpermissions",
            self._meeting_path(space_id, meeting_id) + "/attendees/meetingpermissions",
            json_body={"attendeeId": attendee_id, "attendeeType": attendee_type},
        )

    async def allow_guest(
        self, space_id: str, meeting_id: str, attendee_id: str, remember: bool = False
    ) -> None:
        """Admit a waiting guest (moderator); ``remember`` admits every later guest too."""
        await self._lobby_decision("allow", space_id, meeting_id, attendee_id, remember)

    async def deny_guest(
        self, space_id: str, meeting_id: str, attendee_id: str, remember: bool = False
    ) -> None:
        """Turn a waiting guest away (moderator); ``remember`` denies every later guest too."""
        await self._lobby_decision("deny", space_id, meeting_id, attendee_id, remember)

    async def _lobby_decision(
        self, action: str, space_id: str, meeting_id: str, attendee_id: str, remember: bool
    ) -> None:
        await self._call(
            "POST",
            f"{_ATTENDEES}/meetingpermissions/{action}",
            f"{self._meeting_path(space_id, meeting_id)}/attendees/meetingpermissions/{action}",
            json_body={"attendeeId": attendee_id, "remember": remember},
        )

    # --- transport ---------------------------------------------------------------------------------

    @staticmethod
    def _meeting_path(space_id: str, meeting_id: str) -> str:
        return f"/api/spaces/{_segment(space_id)}/meetings/{_segment(meeting_id)}"

    def _attendee_path(
        self, space_id: str, meeting_id: str, attendee_type: str, attendee_id: str
    ) -> str:
        return (
            f"{self._meeting_path(space_id, meeting_id)}/attendees/"
            f"{_segment(attendee_type)}/{_segment(attendee_id)}"
        )

    def _delay(self, retry: int) -> float:
        return self._random() * min(self._backoff_max, self._backoff * 2.0**retry)

    async def _call(
        self,
        method: str,
        template: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool = False,
        gone_ok: bool = False,
        ended_ok: bool = False,
    ) -> object:
        """Send one API call, retrying an idempotent one; return its decoded JSON body (or None).

        ``gone_ok``: a DELETE retried after an attempt that may have been applied (timeout, 5xx) can
        find its target already gone (404/409); that is the outcome the caller asked for.
        ``ended_ok``: 409 ``meeting_ended`` is success too (an ended meeting has no attendees left).
        """
        route = f"{method} {template}"
        attempts = 1 + (self._retries if idempotent else 0)
        maybe_applied = False
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._delay(attempt - 1))
            try:
                status, body = await self._attempt(method, route, path, json_body)
            except TransportError as exc:
                maybe_applied = maybe_applied or exc.maybe_applied
                if attempt + 1 < attempts:
                    log.info(
                        "retrying spaces request", route=route, attempt=attempt + 1, error=str(exc)
                    )
                    continue
                raise
            if status < 300:
                return body
            error = _error_from(status, body)
            if (gone_ok and maybe_applied and status in (404, 409)) or (
                ended_ok and isinstance(error, MeetingEndedError)
            ):
                return None
            if status in _RETRY_STATUSES and attempt + 1 < attempts:
                maybe_applied = True
                log.info("retrying spaces request", route=route, attempt=attempt + 1, status=status)
                continue
            raise error
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(
        self, method: str, route: str, path: str, json_body: Mapping[str, Any] | None
    ) -> tuple[int, object]:
        started = time.perf_counter()
        if self._local is not None:
            code, answer = await self._local.request(method, path, self._token, json_body)
            if self._on_request is not None:
                self._on_request(route, code, time.perf_counter() - started)
            return code, answer
        session = self._ensure_session()
        status: int | None = None
        try:
            async with session.request(method, self._base + path, json=json_body) as response:
                status = response.status
                raw = await response.read()
        except TimeoutError as exc:
            # aiohttp's timeouts subclass both TimeoutError and ClientError: test this one first.
            raise RequestTimeout(f"{route}: no answer within the timeout", route=route) from exc
        except aiohttp.ClientConnectorError as exc:
            # Raised while opening the connection: the request was never sent.
            raise ConnectError(f"{route}: {exc}", route=route, maybe_applied=False) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # The connection failed after the request may have been sent (reset, closed early).
            raise ConnectError(f"{route}: {exc!r}", route=route) from exc
        finally:
            if self._on_request is not None:
                self._on_request(route, status, time.perf_counter() - started)
        return status, _decode(raw, status, route)


def _decode(raw: bytes, status: int, route: str) -> object:
    """The JSON body, ``None`` when empty, or the text of a non-JSON error page (kept for the error)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if status >= 300:
            return raw[:200].decode("utf-8", "replace")
        raise InvalidResponse(f"{route}: answer {status} is not JSON") from None


def _error_from(status: int, body: object) -> SpacesError:
    if isinstance(body, Mapping):
        code = body.get("error")
        message = body.get("message")
        if isinstance(code, str):
            return api_error(status, code, message if isinstance(message, str) else "")
    return api_error(status, f"http_{status}", body if isinstance(body, str) else "")


def _read(reader: Callable[[object], T], body: object) -> T:
    try:
        return reader(body)
    except PayloadError as exc:
        raise InvalidResponse(str(exc)) from exc
