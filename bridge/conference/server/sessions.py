"""Client sessions: the attendees a client process joined leave when that process is gone.

A bridge node joins an attendee for each phone it carries; if the node dies (SIGKILL, a crash, a
lost machine) nobody is left to send the ``DELETE``, and its phones would stay in the roster for
ever. So a client names its process: a random session id sent with every HTTP request
(``Spaces-Session`` header) and with its Socket.IO connection (``auth.session``). A session is
*alive* while at least one authenticated socket of it is connected. When its last socket goes,
or an attendee is joined by a session that has none, the session's lease starts running out:
unless a socket of the session connects again within ``[server] session_timeout_seconds``,
every attendee it joined that is still present leaves the meeting, with the events of a leave
(docs/conference-api.md, Sessions).

Sessions are scoped by token name: another token that learnt the id can neither keep the session
alive nor end it. Attendees joined without a session (browsers, the embedded bridge calling
in-process, other API users) are never touched.

:class:`Leases` is the rule, without I/O: time is passed in, and :meth:`Leases.expire` returns what
ran out. :class:`Sessions` is the thin asyncio adapter: one timer at the earliest deadline, and the
leaves published like any other.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from ..wire import Category
from .errors import ApiError, BadRequest
from .model import JSON, Caller, Event
from .state import Conference

log = structlog.get_logger("bridge.conference.server.sessions")

_SESSION = re.compile(r"[A-Za-z0-9._~-]{1,64}")
"""A session id: the client's uuid4 hex, or any short token of URL-safe characters."""

Key = tuple[str, str]
"""``(token name, session id)``: a session belongs to the token that uses it."""


def session_id(value: object) -> str | None:
    """A session id as sent (header or ``auth.session``), None when absent; ``BadRequest`` when
    it is not a short URL-safe token (a client bug: say so rather than drop calls later)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _SESSION.fullmatch(value):
        raise BadRequest("a session id is 1-64 letters, digits, '.', '_', '~', '-'", "bad_field")
    return value


@dataclass(frozen=True, slots=True)
class Held:
    """One attendee a session joined: enough to make it leave as its owner would."""

    caller: Caller
    space_id: str
    meeting_id: str
    attendee_type: str
    attendee_id: str


@dataclass(frozen=True, slots=True)
class Expired:
    """A session whose lease ran out, and the attendees it still held."""

    key: Key
    attendees: tuple[Held, ...]


@dataclass(slots=True)
class _Lease:
    sockets: set[str] = field(default_factory=set)
    attendees: dict[str, Held] = field(default_factory=dict)
    deadline: float | None = None
    """When the attendees leave; None while a socket is connected (or nothing is held)."""


class Leases:
    """Which session holds which attendees and sockets, and when each socketless one runs out."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("a session timeout must be positive")
        self.timeout = timeout
        self._leases: dict[Key, _Lease] = {}
        self._owner: dict[str, Key] = {}  # attendee id → its session
        self._socket: dict[str, Key] = {}  # socket id → its session

    def joined(self, key: Key, held: Held, now: float) -> None:
        """``key`` joined an attendee: it leaves with the session. Without a socket connected, the
        lease runs from now (unless it already runs: joining does not extend a dying session)."""
        lease = self._leases.setdefault(key, _Lease())
        lease.attendees[held.attendee_id] = held
        self._owner[held.attendee_id] = key
        if not lease.sockets and lease.deadline is None:
            lease.deadline = now + self.timeout

    def connected(self, key: Key, sid: str) -> None:
        """A socket of ``key`` connected: the session is alive, its lease stops running."""
        lease = self._leases.setdefault(key, _Lease())
        lease.sockets.add(sid)
        lease.deadline = None
        self._socket[sid] = key

    def disconnected(self, sid: str, now: float) -> None:
        """A socket went; if it was its session's last, the lease runs from now."""
        key = self._socket.pop(sid, None)
        if key is None:
            return
        lease = self._leases[key]
        lease.sockets.discard(sid)
        if not lease.sockets and lease.attendees:
            lease.deadline = now + self.timeout
        self._tidy(key)

    def left(self, attendee_id: str) -> None:
        """The attendee is gone (left, removed, turned away): nothing to do for it any more."""
        key = self._owner.pop(attendee_id, None)
        if key is None:
            return
        self._leases[key].attendees.pop(attendee_id, None)
        self._tidy(key)

    def meeting_ended(self, meeting_id: str) -> None:
        """Every attendee of an ended meeting is gone."""
        gone = [
            held.attendee_id
            for lease in self._leases.values()
            for held in lease.attendees.values()
            if held.meeting_id == meeting_id
        ]
        for attendee_id in gone:
            self.left(attendee_id)

    def expire(self, now: float) -> list[Expired]:
        """The sessions whose lease ran out by ``now``, forgotten here; their attendees must leave."""
        due = [k for k, v in self._leases.items() if v.deadline is not None and v.deadline <= now]
        expired = []
        for key in due:
            lease = self._leases.pop(key)
            for attendee_id in lease.attendees:
                del self._owner[attendee_id]
            expired.append(Expired(key, tuple(lease.attendees.values())))
        return expired

    def next_deadline(self) -> float | None:
        """When the next lease runs out, if one is running."""
        deadlines = [v.deadline for v in self._leases.values() if v.deadline is not None]
        return min(deadlines, default=None)

    def held(self, key: Key) -> list[str]:
        """The attendee ids ``key`` holds (for tests and logs)."""
        lease = self._leases.get(key)
        return list(lease.attendees) if lease is not None else []

    def __len__(self) -> int:
        """Sessions known: those with a socket or an attendee (memory is bounded by both)."""
        return len(self._leases)

    def _tidy(self, key: Key) -> None:
        lease = self._leases[key]
        if not lease.sockets and not lease.attendees:
            del self._leases[key]


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...


class Sockets(Protocol):
    """``realtime.Realtime`` as this module uses it."""

    def on_connect(self, callback: Callable[[str, Caller, str | None], None]) -> None: ...

    def on_disconnect(self, callback: Callable[[str], Awaitable[None]]) -> None: ...

    def listen(self, deliver: Callable[[JSON], None]) -> Callable[[], None]: ...


class Sessions:
    """:class:`Leases` on the event loop: one timer at the earliest deadline; expired attendees
    leave through ``Conference.leave`` as their owner, published like any leave."""

    def __init__(
        self,
        conference: Conference,
        publisher: Publisher,
        timeout: float,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._conference = conference
        self.publisher = publisher
        self.leases = Leases(timeout)
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.expired_attendees = 0
        """Attendees removed because their session ran out (for tests and a future metric)."""

    def attach(self, sockets: Sockets) -> None:
        """Follow ``sockets``' connections and every published event."""
        sockets.on_connect(self.connected)
        sockets.on_disconnect(self.disconnected)
        sockets.listen(self.follow)

    def joined(
        self, caller: Caller, session: str, space_id: str, meeting_id: str, body: JSON
    ) -> None:
        """A join with ``session`` succeeded (``body``: its answer): the attendee is held by it."""
        held = Held(
            caller, space_id, meeting_id, str(body["attendeeType"]), str(body["attendeeId"])
        )
        self.leases.joined((caller.token_name, session), held, self._now())
        self._schedule()

    def connected(self, sid: str, caller: Caller, session: str | None) -> None:
        if session is not None:
            self.leases.connected((caller.token_name, session), sid)
            self._schedule()

    async def disconnected(self, sid: str) -> None:
        self.leases.disconnected(sid, self._now())
        self._schedule()

    def follow(self, payload: Mapping[str, object]) -> None:
        """Every published event: attendees that left, meetings that ended, are forgotten."""
        category, content = payload.get("category"), payload.get("content")
        if not isinstance(content, Mapping):
            return
        if category == Category.ATTENDEE_LEFT:
            self.leases.left(str(content.get("attendeeId")))
        elif category == Category.MEETING_ENDED:
            self.leases.meeting_ended(str(content.get("meetingId")))

    async def close(self) -> None:
        """Stop the timer and wait for leaves in progress (the server is stopping)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.leases.next_deadline()
        if deadline is not None and not self._closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, deadline - self._now()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        for expired in self.leases.expire(self._now()):
            task = asyncio.create_task(self._leave(expired), name="session expired")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._schedule()

    async def _leave(self, expired: Expired) -> None:
        removed = 0
        for held in expired.attendees:
            try:
                outcome = self._conference.leave(
                    held.caller,
                    held.space_id,
                    held.meeting_id,
                    held.attendee_type,
                    held.attendee_id,
                )
            except ApiError:
                continue  # gone meanwhile (a moderator removed it, the meeting ended)
            removed += 1
            try:
                await self.publisher.publish(outcome.events)
            except Exception:
                log.exception("session leave not published", attendee=held.attendee_id)
        self.expired_attendees += removed
        token_name, session = expired.key
        log.warning(
            "session expired: its attendees left",
            session=session,
            token_name=token_name,
            attendees=removed,
            timeout=self.leases.timeout,
        )
