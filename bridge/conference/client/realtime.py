"""Socket.IO subscription to the conference server's events (namespace ``/chat``).

The reconnection loop is ours, not python-socketio's: its built-in one does not start when the
*server* closes the connection (a graceful restart sends an Engine.IO CLOSE first, and the client
then sees itself as "disconnected on purpose"), and it does not retry a failed first connection.
Here one supervisor task connects, re-sends every remembered subscription, reports
:class:`~bridge.conference.client.events.Connected` (and
:class:`~bridge.conference.client.events.Resynced` after a reconnection, so that callers re-read what
they missed), waits for the drop, reports :class:`~bridge.conference.client.events.Disconnected`,
and tries again with jittered exponential backoff for
as long as the subscription is open.

python-socketio ships no type information; it is confined to this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random as _random
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import socketio  # type: ignore[import-untyped]
import structlog

from ..wire import NAMESPACE, SESSION_AUTH, Category
from ..wire import RESPONSE as _RESPONSE
from ..wire import SEND as _SEND
from ..wire import SUBSCRIBE as _SUBSCRIBE
from .errors import ApiError, ConnectError, api_error
from .events import Connected, Disconnected, Resynced, SpacesEvent, parse_event
from .session import process_session

__all__ = ["NAMESPACE", "SpacesSubscription"]

log = structlog.get_logger("bridge.conference.client")


# Socket acks carry an error code but (in the contract) no HTTP status; this restores the status so
# that refusals raise the same exception classes as the HTTP client. An ack's own integer "status"
# wins when a server sends one; an unknown code reads as 400 (the request did not fit).
_ACK_STATUS: Final = {
    "bad_request": 400,
    "bad_field": 400,
    "bad_json": 400,
    "missing_field": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_owner": 403,
    "prevent_unmuting": 403,
    "guest_denied": 403,
    "not_found": 404,
    "conflict": 409,
    "meeting_ended": 409,
    "no_active_meeting": 409,
    "not_admitted": 409,
    "internal": 500,
}


class _DroppedError(Exception):
    """The connection ended while the supervisor was setting it up."""


class SpacesSubscription:
    """One Socket.IO connection that delivers typed events of the subscribed spaces to ``on_event``.

    ``on_event`` is called from the event loop, in the order the server sent the events; it must not
    block. Connection events are delivered through it too.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        on_event: Callable[[SpacesEvent], None],
        reconnect_delay: float = 0.5,
        reconnect_delay_max: float = 15.0,
        connect_timeout: float = 5.0,
        ack_timeout: float = 5.0,
        close_timeout: float = 1.0,
        random: Callable[[], float] = _random.random,
        socketio_path: str = "socket.io",
        session: str | None = None,
    ) -> None:
        """After the n-th failed attempt in a row the next one waits between half and all of
        ``min(reconnect_delay_max, reconnect_delay * 2**n)`` (jitter, so that bridges restarted
        together do not reconnect in step). ``connect_timeout`` bounds one connect-and-subscribe,
        ``ack_timeout`` each acknowledged emit, ``close_timeout`` the wait for the server's answer
        to a WebSocket close (a server shutting down may never answer, and it waits for us).
        ``session``: sent in ``auth`` on every connection, reconnections included, so that the
        server keeps this process's attendees (default: this process's id, as the HTTP client's)."""
        self._url = base_url.rstrip("/")
        self._token = token
        self._on_event = on_event
        self._delay = reconnect_delay
        self._delay_max = reconnect_delay_max
        self._connect_timeout = connect_timeout
        self._ack_timeout = ack_timeout
        self._close_timeout = close_timeout
        self._random = random
        self._path = socketio_path
        self._session = session or process_session()
        self._spaces: dict[str, None] = {}  # an ordered set: subscribed in the order asked
        self._sio: Any = None  # the connected socketio.AsyncClient, or None while down
        self._drop: Callable[[str], None] | None = None  # ends the current connection
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.malformed_events = 0
        """Payloads dropped because they did not match the contract (for metrics and tests)."""

    # --- public ------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the socket is up and every remembered space is subscribed."""
        return self._sio is not None

    @property
    def spaces(self) -> tuple[str, ...]:
        return tuple(self._spaces)

    async def start(self) -> None:
        """Start connecting in the background (returns at once; watch for ``Connected``)."""
        if self._closing:
            raise RuntimeError("SpacesSubscription is closed")
        if self._task is None:
            self._http = aiohttp.ClientSession()
            self._task = asyncio.create_task(self._supervise(), name="spaces-subscription")

    async def close(self) -> None:
        """Disconnect and stop reconnecting; waits until every socket and session is closed."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # python-socketio may swallow a cancellation that lands inside its connect(); the
            # supervisor would then wait on the new connection for ever. Cancel until it ends.
            while not task.done():
                await asyncio.wait({task}, timeout=0.25)
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

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

    async def subscribe(self, space_id: str) -> None:
        """Receive the space's events from now on, and again after every reconnection.

        While disconnected the space is only remembered. Raises ``NotFound`` (and forgets the space)
        when the server refuses it.
        """
        self._spaces[space_id] = None
        sio = self._sio
        if sio is None:
            return  # the supervisor subscribes every remembered space when it connects
        try:
            await self._subscribe_on(sio, space_id)
        except ApiError:
            self._spaces.pop(space_id, None)
            raise
        except (_DroppedError, socketio.exceptions.SocketIOError):
            # No ack: the next connection subscribes it, so make that happen now.
            self._abandon("subscription not acknowledged")

    async def send_tracksstatus(
        self,
        space_id: str,
        attendee_id: str,
        audio: bool,
        video: bool,
        version: str | None = None,
    ) -> None:
        """Report an attendee's media state on the socket (``SEND_MEDIA_SESSION_EVENTS``).

        ``version=None`` reports as a legacy client (the server may refuse, answer with
        ``request.tracksstatus.change`` and raise the hand); ``"1.1"`` as a modern one.
        Raises ``ConnectError`` while disconnected or when no ack comes (the socket is then as good
        as gone), and the ``ApiError`` of the ack's code when the server refuses the report.
        """
        sio = self._sio
        if sio is None:
            raise ConnectError("not connected to the conference server's socket")
        payload: dict[str, Any] = {
            "category": Category.TRACKSSTATUS,
            "topicId": space_id,
            "content": {"attendeeId": attendee_id, "audio": audio, "video": video},
        }
        if version is not None:
            payload["version"] = version
        try:
            ack = await sio.call(_SEND, payload, namespace=NAMESPACE, timeout=self._ack_timeout)
        except socketio.exceptions.SocketIOError as exc:
            self._abandon("tracksstatus not acknowledged")
            raise ConnectError(f"tracksstatus not acknowledged: {exc!r}") from exc
        _check_ack(ack)

    # --- supervisor --------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        was_connected = False
        reported_down = False
        while True:
            dropped = asyncio.Event()
            reason: list[str] = []
            sio = self._new_client(dropped, reason)
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await self._connect(sio, dropped)
            except (OSError, TimeoutError, _DroppedError, socketio.exceptions.SocketIOError) as exc:
                await _quietly_disconnect(sio)
                failures += 1
                log.info("spaces socket connect failed", url=self._url, error=repr(exc))
                if not reported_down:
                    reported_down = True
                    self._emit(Disconnected(f"connect failed: {exc!r}"))
                await asyncio.sleep(self._backoff(failures))
                continue
            except BaseException:
                await _quietly_disconnect(sio)
                raise
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # A close() arrived during connect() and was swallowed there: honour it.
                await _quietly_disconnect(sio)
                raise asyncio.CancelledError
            failures = 0
            reported_down = False
            self._sio = sio
            self._drop = functools.partial(_drop, dropped, reason)
            log.info(
                "spaces socket connected",
                url=self._url,
                spaces=list(self._spaces),
                session=self._session,
            )
            self._emit(Connected())
            if was_connected:
                self._emit(Resynced(tuple(self._spaces)))
            was_connected = True
            try:
                await dropped.wait()
            finally:
                self._sio = self._drop = None
                await _quietly_disconnect(sio)
            why = reason[0] if reason else "disconnected"
            log.warning("spaces socket disconnected", url=self._url, reason=why)
            reported_down = True
            self._emit(Disconnected(why))
            # The first retry is jittered too: after a server restart every bridge reconnects.
            await asyncio.sleep(self._backoff(0))

    async def _connect(self, sio: Any, dropped: asyncio.Event) -> None:
        await sio.connect(
            self._url,
            auth={"token": self._token, SESSION_AUTH: self._session},
            namespaces=[NAMESPACE],
            # WebSocket only: a long-polling GET would hold the server's shutdown and hide drops.
            transports=["websocket"],
            socketio_path=self._path,
            wait_timeout=self._connect_timeout,
        )
        done: set[str] = set()
        # Loop until nothing is left: subscribe() may add a space while we await the acks.
        while pending := [s for s in self._spaces if s not in done]:
            for space_id in pending:
                if dropped.is_set():
                    raise _DroppedError
                try:
                    await self._subscribe_on(sio, space_id)
                except ApiError as exc:
                    # The server no longer hosts the space (restarted with another config).
                    log.warning("spaces subscription refused", space=space_id, error=str(exc))
                    self._spaces.pop(space_id, None)
                done.add(space_id)
        if dropped.is_set():
            raise _DroppedError

    async def _subscribe_on(self, sio: Any, space_id: str) -> None:
        ack = await sio.call(
            _SUBSCRIBE,
            {"channel": {"type": "topic", "_id": space_id}},
            namespace=NAMESPACE,
            timeout=self._ack_timeout,
        )
        _check_ack(ack)

    def _new_client(self, dropped: asyncio.Event, reason: list[str]) -> Any:
        # A fresh client per connection: no state of a dead connection can leak into the next one.
        sio = socketio.AsyncClient(
            reconnection=False,  # see the module docstring
            logger=False,
            engineio_logger=False,
            handle_sigint=False,  # the daemon owns its signals
            http_session=self._http,
            # Engine.IO uses it only as the WebSocket close timeout (we never long-poll).
            request_timeout=self._close_timeout,
        )

        def on_disconnect(why: object = None) -> None:
            _drop(dropped, reason, str(why) if why is not None else "disconnected")

        sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
        sio.on(_RESPONSE, self._on_response, namespace=NAMESPACE)
        return sio

    def _on_response(self, *args: object) -> None:
        # One argument by the contract; anything else is handed to the parser to be counted.
        payload = args[0] if len(args) == 1 else args
        event = parse_event(payload, on_malformed=self._on_malformed)
        if event is not None:
            self._emit(event)

    def _on_malformed(self, why: str) -> None:
        self.malformed_events += 1
        log.warning("malformed spaces event dropped", reason=why)

    def _abandon(self, why: str) -> None:
        """Give up on a connection that stopped answering; the supervisor reconnects."""
        if self._drop is not None:
            log.warning("abandoning spaces socket", reason=why)
            self._drop(why)

    def _emit(self, event: SpacesEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            # A consumer's bug must not end the socket's read task (and with it every event).
            log.exception("spaces event handler failed", kind=type(event).__name__)

    def _backoff(self, failures: int) -> float:
        ceiling = min(self._delay_max, self._delay * 2.0**failures)
        return ceiling / 2 + self._random() * ceiling / 2


def _drop(dropped: asyncio.Event, reason: list[str], why: str) -> None:
    if not reason:  # the first reason is the real one; closing adds "client disconnect"
        reason.append(why)
    dropped.set()


async def _quietly_disconnect(sio: Any) -> None:
    # Closing a connection that is already half gone may fail in many ways; none of them matter.
    with contextlib.suppress(Exception):
        await sio.disconnect()


def _check_ack(ack: object) -> None:
    if isinstance(ack, Mapping) and ack.get("ok") is True:
        return
    data: Mapping[str, object] = ack if isinstance(ack, Mapping) else {}
    code = data.get("error")
    code = code if isinstance(code, str) else "bad_ack"
    status = data.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        status = _ACK_STATUS.get(code, 400)
    message = data.get("message")
    raise api_error(status, code, message if isinstance(message, str) else repr(ack))
