"""Socket.IO side of the conference API (namespace ``/chat``): token auth on connect, one room per
space, ``MEDIA_SESSION_RESPONSE`` broadcasts in the order the rules produced them,
``SEND_MEDIA_SESSION_EVENTS`` tracksstatus reports from clients (legacy and modern), and the
requests other parts of the server answer on the same sockets (:meth:`Realtime.on`: a browser's
audio signalling, ``webrtc.BrowserAudio``).

python-socketio ships no type information; it is confined to this module behind ``Realtime``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import socketio  # type: ignore[import-untyped]
import structlog
from aiohttp import web

from ..wire import NAMESPACE, RESPONSE, SEND, SESSION_AUTH, SUBSCRIBE, Category
from . import fields
from .config import ServerConfig
from .errors import ApiError, BadRequest, NotFound
from .model import JSON, Caller, Event, Outcome
from .sessions import session_id
from .state import Conference

log = structlog.get_logger("bridge.conference.server.realtime")


MAX_MESSAGE = 64 * 1024
"""Largest Socket.IO packet accepted: a tracksstatus report is under 200 bytes (security limit)."""


FAILED: JSON = {"ok": False, "status": 500, "error": "internal", "message": "the server failed"}
"""The ack of a socket request that hit a bug of ours (logged), like the HTTP side's 500."""

Handler = Callable[[str, Caller, object], Awaitable[JSON]]
"""A socket request's handler: ``(sid, caller, data)`` → the ack (an ``ApiError`` becomes a
refusal ack)."""


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...


def room(space_id: str) -> str:
    """The Socket.IO room of a space's events."""
    return f"space:{space_id}"


class Realtime:
    """The ``/chat`` namespace: authenticates sockets, subscribes them to spaces, relays events."""

    def __init__(self, config: ServerConfig, conference: Conference) -> None:
        self._config = config
        self._conference = conference
        # One lock for every broadcast: the rules run synchronously, so taking the lock right after
        # them (FIFO) keeps the wire order equal to the order in which the state changed.
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[JSON], None]] = []
        self._gone: list[Callable[[str], Awaitable[None]]] = []
        self._arrived: list[Callable[[str, Caller, str | None], None]] = []
        self._closed = False
        self.publisher: Publisher = self
        """Where a socket report's events go: ``media.MediaSync`` in front of this object when
        the server has a media plane, so that a self-unmute over the socket reaches the mixer."""
        self._sio = socketio.AsyncServer(
            async_mode="aiohttp",
            logger=False,
            engineio_logger=False,
            max_http_buffer_size=MAX_MESSAGE,
        )
        self._sio.on("connect", self._connect, namespace=NAMESPACE)
        self._sio.on("disconnect", self._disconnect, namespace=NAMESPACE)
        self._sio.on(SUBSCRIBE, self._subscribe, namespace=NAMESPACE)
        self._sio.on(SEND, self._send, namespace=NAMESPACE)

    def attach(self, app: web.Application) -> None:
        """Serve Socket.IO on ``app`` at the default ``/socket.io/`` path."""
        self._sio.attach(app)

    async def publish(self, events: Sequence[Event]) -> None:
        """Emit ``events`` to their spaces' rooms, in order."""
        if not events:
            return
        async with self._lock:
            for event in events:
                payload = event.payload()
                for deliver in self._listeners:
                    deliver(payload)
                # python-socketio encodes the packet before it looks for recipients: a room nobody
                # listens in (no console open) costs nothing this way.
                target = room(event.topic)
                if self._sio.manager.rooms.get(NAMESPACE, {}).get(target):
                    await self._sio.emit(RESPONSE, payload, to=target, namespace=NAMESPACE)

    def complete(self, outcome: Outcome) -> None:
        """Nothing to add to an answer: events alone, no media plane."""
        del outcome

    def listen(self, deliver: Callable[[JSON], None]) -> Callable[[], None]:
        """Hand every event's payload to ``deliver`` too, in the room's order (a client in this
        process: the bridge and its embedded server); returns the way to stop."""
        self._listeners.append(deliver)
        return lambda: self._listeners.remove(deliver)

    def on(self, event: str, handler: Handler) -> None:
        """Answer the socket request ``event`` with ``handler`` (authenticated sockets only)."""

        async def answer(sid: str, data: object = None) -> JSON:
            try:
                return await handler(sid, await self._caller(sid), data)
            except ApiError as exc:
                return _refusal(exc)
            except Exception:
                log.exception("socket event failed", sid=sid, socket_event=event)
                return dict(FAILED)

        self._sio.on(event, answer, namespace=NAMESPACE)

    def on_connect(self, callback: Callable[[str, Caller, str | None], None]) -> None:
        """Call ``callback(sid, caller, session)`` when an authenticated socket connects
        (``session``: its ``auth.session``, None without one)."""
        self._arrived.append(callback)

    def on_disconnect(self, callback: Callable[[str], Awaitable[None]]) -> None:
        """Call ``callback(sid)`` when a socket goes (a closed page)."""
        self._gone.append(callback)

    async def send(self, sid: str, event: str, data: JSON) -> None:
        """Emit ``event`` to one socket (not a room): what concerns that client alone."""
        await self._sio.emit(event, data, to=sid, namespace=NAMESPACE)

    def has_space(self, space_id: str) -> bool:
        return self._conference.has_space(space_id)

    async def close(self) -> None:
        """Close every connection, then stop Socket.IO's background tasks. Idempotent.

        An Engine.IO CLOSE (not a Socket.IO namespace disconnect) is what a restarting server sends:
        clients treat it as a lost connection and reconnect, whereas a namespace disconnect tells
        them to stay away. Without it, open sockets would hold ``runner.cleanup()`` until their next
        ping (25 s).
        """
        if self._closed:
            return
        self._closed = True
        for socket in list(self._sio.eio.sockets.values()):
            # wait=False: the queue of a client that already left would never drain.
            await socket.close(wait=False)
        await self._sio.shutdown()

    async def _connect(self, sid: str, environ: Mapping[str, Any], auth: object) -> None:
        del environ
        token = auth.get("token") if isinstance(auth, dict) else None
        caller = self._config.caller(token if isinstance(token, str) else None)
        if caller is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        try:
            session = session_id(auth.get(SESSION_AUTH) if isinstance(auth, dict) else None)
        except ApiError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from exc
        await self._sio.save_session(sid, {"caller": caller}, namespace=NAMESPACE)
        for arrived in self._arrived:
            arrived(sid, caller, session)
        log.debug("socket connected", sid=sid, token_name=caller.token_name, session=session)

    async def _disconnect(self, sid: str, *args: object) -> None:
        # python-socketio ≥ 5.12 passes a reason; older versions do not.
        log.debug("socket disconnected", sid=sid, reason=args[0] if args else None)
        for callback in self._gone:
            try:
                await callback(sid)
            except Exception:
                log.exception("socket departure not handled", sid=sid)

    async def _caller(self, sid: str) -> Caller:
        session = await self._sio.get_session(sid, namespace=NAMESPACE)
        caller: Caller = session["caller"]
        return caller

    async def _subscribe(self, sid: str, data: object) -> JSON:
        """``{channel: {type: "topic", _id: spaceId}}`` → the space's room; ack ``{ok: true}``."""
        try:
            space_id = _subscribed_space(data)
        except ApiError as exc:
            return _refusal(exc)
        if not self._conference.has_space(space_id):
            return _refusal(NotFound(f"no space {space_id}"))
        await self._sio.enter_room(sid, room(space_id), namespace=NAMESPACE)
        return {"ok": True}

    async def _send(self, sid: str, data: object) -> JSON:
        """A client's ``tracksstatus`` report; ack ``{ok, applied}`` or ``{ok: false, error}``."""
        try:
            caller = await self._caller(sid)
            body, content = _report(data)
            space_id = fields.req_str(body, "topicId")
            outcome = self._conference.report_tracks(
                caller,
                space_id,
                fields.req_str(content, "attendeeId"),
                audio=fields.opt_bool(content, "audio"),
                video=fields.opt_bool(content, "video"),
                version=_version(body.get("version")),
            )
        except ApiError as exc:
            return _refusal(exc)
        except Exception:
            # A bug of ours must not kill the socket task: log it and answer like the HTTP side.
            log.exception("socket event failed", sid=sid, socket_event=SEND)
            return dict(FAILED)
        await self.publisher.publish(outcome.events)
        return {"ok": True, **(outcome.body or {})}


def _refusal(exc: ApiError) -> JSON:
    # The HTTP status travels in the ack too, so that socket and REST refusals read the same.
    return {"ok": False, "status": exc.status, "error": exc.code, "message": exc.message}


def _version(value: object) -> str | None:
    # Clients send "1.1" or 1.1; anything else (absent, null, garbage) is read as legacy.
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def _subscribed_space(data: object) -> str:
    channel = fields.body_object(fields.body_object(data).get("channel"))
    if channel.get("type") != "topic":
        raise BadRequest('channel.type must be "topic"', "bad_field")
    return fields.req_str(channel, "_id")


def _report(data: object) -> tuple[fields.Body, fields.Body]:
    body = fields.body_object(data)
    if body.get("category") != Category.TRACKSSTATUS:
        raise BadRequest("only the tracksstatus category is accepted", "bad_field")
    return body, fields.body_object(body.get("content"))
