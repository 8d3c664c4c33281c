"""Janus's AudioBridge over its HTTP REST transport: pure request builders and response parsers,
and :class:`AudioBridgeClient`, a thin transport over one Janus session.

The Janus API (1.1.2): ``POST /janus`` ``create`` makes a session; ``POST /janus/<session>``
``attach`` makes a handle on ``janus.plugin.audiobridge``; ``POST /janus/<session>/<handle>``
``message`` carries a plugin request in ``body``. Synchronous plugin requests (create, destroy,
mute, kick, listparticipants) answer in the POST's response; asynchronous ones (join, leave)
answer ``ack`` there and their result comes later as an event with the same ``transaction``, read
by a long poll ``GET /janus/<session>?maxev=N``. The long poll, and a keepalive every few seconds,
keep the session alive: Janus destroys a silent session after ``session_timeout``, and with it
every participant its handles joined. docs/mixer.md has the shapes that worked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

log = structlog.get_logger("bridge.conference.server.mixer")

PLUGIN = "janus.plugin.audiobridge"
MAX_EVENTS = 32
"""Events one long poll may return: every mute change is pushed to every handle in the room."""
POLL_TIMEOUT = 45.0
"""A long poll's own timeout: Janus answers an idle one with a keepalive after 30 s."""
POLL_RETRIES = 3
"""Consecutive failed long polls (other than a refused connection) before the session counts as
lost."""
CODECS = {"PCMU": "pcmu", "PCMA": "pcma"}
"""The wire's codec names -> AudioBridge's (G.711 only: the bridge sends nothing else)."""
OPUS = "opus"
"""What browsers send: 1.1.2 runs each participant's Opus encoder and decoder at the room's rate
(narrowband in an 8 kHz room) and answers ``maxplaybackrate`` = that rate."""

NO_SUCH_SESSION = 458
ROOM_EXISTS = 486
UNREACHABLE = 0
""":class:`JanusError` code for a Janus that does not answer (not one of Janus's codes)."""


class JanusError(Exception):
    """An error Janus answered (its code and reason: 4xx from the core, 48x-49x from AudioBridge),
    or :data:`UNREACHABLE` when it did not answer."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RtpJoined:
    """A plain-RTP join's answer: where Janus receives the participant's audio."""

    participant: int
    ip: str
    port: int
    payload_type: int


# Request builders: the ``body`` of a plugin message.


def create_room(
    room: int,
    *,
    admin_key: str,
    secret: str,
    sampling_rate: int,
    description: str = "",
    audiolevel_event: bool = False,
    talking_packets: int = 100,
    talking_level: int = 25,
) -> dict[str, Any]:
    """A room in memory only (``permanent`` false: Janus's configuration is not written back).
    ``audiolevel_event``: talking events, which 1.1.2 computes only from the RTP audio-level
    extension that WebRTC participants send (plain-RTP participants get none): every
    ``talking_packets`` packets it compares their mean level (0 loud, 127 silent: -dBov) with
    ``talking_level`` and announces a change."""
    talking = {"audio_active_packets": talking_packets, "audio_level_average": talking_level}
    return {
        "request": "create",
        "room": room,
        "admin_key": admin_key,
        "secret": secret,
        "description": description,
        "is_private": True,
        "permanent": False,
        "sampling_rate": sampling_rate,
        "allow_rtp_participants": True,  # else a plain-RTP join fails with 489
        "audiolevel_event": audiolevel_event,
        **(talking if audiolevel_event else {}),
    }


def destroy_room(room: int, *, secret: str) -> dict[str, Any]:
    return {"request": "destroy", "room": room, "secret": secret, "permanent": False}


def join_rtp(
    room: int,
    participant: int,
    *,
    display: str,
    codec: str,
    ip: str,
    port: int,
    muted: bool,
) -> dict[str, Any]:
    """A plain-RTP participant that receives the room's mix (minus itself) at ``ip:port``, in
    ``codec`` (``PCMU`` or ``PCMA``; G.711's payload type is implied)."""
    return {
        "request": "join",
        "room": room,
        "id": participant,
        "display": display,
        "muted": muted,
        "codec": CODECS[codec],
        "rtp": {"ip": ip, "port": port},
    }


def join_webrtc(room: int, participant: int, *, display: str, muted: bool) -> dict[str, Any]:
    """A WebRTC participant: the browser's JSEP offer goes beside this body, the answer comes
    back beside the ``joined`` event."""
    return {
        "request": "join",
        "room": room,
        "id": participant,
        "display": display,
        "muted": muted,
        "codec": OPUS,
    }


def renegotiation() -> dict[str, Any]:
    """A ``configure`` that carries nothing but the new JSEP offer beside it: without ``muted``,
    a moderator's mute stays as it is (the browser's offer is the only thing it chose)."""
    return {"request": "configure"}


def jsep(kind: str, sdp: str) -> dict[str, Any]:
    """A JSEP object of our own making: only ``type`` and ``sdp``, so that nothing else a browser
    sent (``e2ee``, ``trickle``...) reaches Janus."""
    return {"type": kind, "sdp": sdp}


def leave() -> dict[str, Any]:
    return {"request": "leave"}


def kick(room: int, participant: int, *, secret: str) -> dict[str, Any]:
    return {"request": "kick", "room": room, "id": participant, "secret": secret}


def mute(room: int, participant: int, *, secret: str, muted: bool) -> dict[str, Any]:
    """The room administrator's mute: unlike ``configure`` on the participant's own handle, it
    takes the room secret."""
    return {
        "request": "mute" if muted else "unmute",
        "room": room,
        "id": participant,
        "secret": secret,
    }


def list_participants(room: int) -> dict[str, Any]:
    return {"request": "listparticipants", "room": room}


# Response parsers.


def core_data(message: Any) -> dict[str, Any]:
    """A core request's ``data`` (``create``, ``attach``); :class:`JanusError` for an error."""
    if not isinstance(message, dict):
        raise JanusError(UNREACHABLE, "janus answered something that is not a JSON object")
    if message.get("janus") == "error":
        error = message.get("error") or {}
        raise JanusError(int(error.get("code", 0)), str(error.get("reason", "unknown error")))
    data = message.get("data")
    return data if isinstance(data, dict) else {}


def plugin_data(message: Any) -> dict[str, Any]:
    """A plugin answer's ``plugindata.data``; :class:`JanusError` for a core or plugin error."""
    core_data(message)
    data = (message.get("plugindata") or {}).get("data")
    if not isinstance(data, dict):
        raise JanusError(
            UNREACHABLE, f"janus answered {message.get('janus')!r} without plugin data"
        )
    if "error_code" in data:
        raise JanusError(int(data["error_code"]), str(data.get("error", "unknown error")))
    return data


def jsep_answer(message: dict[str, Any]) -> dict[str, Any]:
    """The JSEP answer beside a plugin event (a WebRTC join or renegotiation)."""
    answer = message.get("jsep")
    if (
        not isinstance(answer, dict)
        or answer.get("type") != "answer"
        or not isinstance(answer.get("sdp"), str)
    ):
        raise JanusError(UNREACHABLE, "janus answered an offer without a JSEP answer")
    return jsep("answer", answer["sdp"])


def parse_joined(data: dict[str, Any]) -> RtpJoined:
    """The ``joined`` event of a plain-RTP join."""
    rtp = data.get("rtp")
    if data.get("audiobridge") != "joined" or not isinstance(rtp, dict):
        raise JanusError(UNREACHABLE, f"a join answered {data.get('audiobridge')!r} without rtp")
    return RtpJoined(
        participant=int(data["id"]),
        ip=str(rtp["ip"]),
        port=int(rtp["port"]),
        payload_type=int(rtp["payload_type"]),
    )


class AudioBridgeClient:
    """One Janus session, its long poll and keepalive, and the AudioBridge requests. Handles are
    the caller's: one per participant (a participant is its handle), any one for room requests."""

    def __init__(
        self,
        base_url: str,
        api_secret: str,
        *,
        keepalive_interval: float = 15.0,
        request_timeout: float = 5.0,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self._base = base_url
        self._secret = api_secret
        self._keepalive_interval = keepalive_interval
        self._request_timeout = request_timeout
        self.on_lost = on_lost
        """Called once, with the reason, when the session is gone (Janus died, or the session
        timed out): every participant it joined is gone with it."""
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        """Called with every event that answers none of our requests: room notifications
        (talking, joins, leaves) and a handle's PeerConnection news (``webrtcup``, ``media``,
        ``hangup``, ``trickle``)."""
        self.session: int | None = None
        self._http: aiohttp.ClientSession | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._transactions = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self.lost: str | None = None

    @property
    def open(self) -> bool:
        return self.session is not None and self.lost is None

    async def connect(self) -> None:
        """Create the session and start its long poll and keepalive."""
        self._http = aiohttp.ClientSession()
        try:
            data = core_data(await self._post(self._base, {"janus": "create"}))
        except BaseException:
            await self._http.close()
            raise
        self.session = int(data["id"])
        self._tasks = [
            asyncio.create_task(self._poll(), name="janus long poll"),
            asyncio.create_task(self._keepalive(), name="janus keepalive"),
        ]

    async def close(self) -> None:
        """Stop polling and destroy the session, even a lost one: a long poll that failed while
        Janus went on leaves a live session whose participants would otherwise linger (and be
        heard twice) until its timeout. Best effort: Janus may be gone."""
        self.lost = self.lost or "closed"
        if self.session is not None:
            with contextlib.suppress(JanusError):
                await self._post(self._session_url, {"janus": "destroy"})
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._fail_pending("session closed")
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def attach(self) -> int:
        data = core_data(await self._post(self._session_url, {"janus": "attach", "plugin": PLUGIN}))
        return int(data["id"])

    async def detach(self, handle: int) -> None:
        core_data(await self._post(f"{self._session_url}/{handle}", {"janus": "detach"}))

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A plugin request on ``handle``: its answer's data, whether Janus gives it at once or
        (``join``, ``leave``) as a later event."""
        return plugin_data(await self._message(handle, body, None))

    async def negotiate(
        self, handle: int, body: dict[str, Any], offer: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A plugin request with a JSEP offer beside it: the answer's data and Janus's JSEP
        answer (its ICE candidates in the SDP: 1.1.2 gathers before answering unless
        ``full_trickle`` is on)."""
        message = await self._message(handle, body, offer)
        return plugin_data(message), jsep_answer(message)

    async def trickle(self, handle: int, candidate: dict[str, Any] | None) -> None:
        """One of the browser's ICE candidates for ``handle``'s PeerConnection (None: the last)."""
        payload = {"janus": "trickle", "candidate": candidate or {"completed": True}}
        core_data(await self._post(f"{self._session_url}/{handle}", payload))

    async def _message(
        self, handle: int, body: dict[str, Any], offer: dict[str, Any] | None
    ) -> dict[str, Any]:
        transaction = f"t{next(self._transactions)}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = waiter
        payload: dict[str, Any] = {"janus": "message", "body": body}
        if offer is not None:
            payload["jsep"] = offer
        try:
            answer = await self._post(f"{self._session_url}/{handle}", payload, transaction)
            if answer.get("janus") == "ack":
                try:
                    answer = await asyncio.wait_for(waiter, self._request_timeout)
                except TimeoutError:
                    raise JanusError(
                        UNREACHABLE, f"no answer to {body.get('request')} in time"
                    ) from None
            return answer
        finally:
            self._pending.pop(transaction, None)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # failed by a lost session while the POST answered anyway

    async def create_room(
        self,
        handle: int,
        room: int,
        *,
        admin_key: str,
        secret: str,
        sampling_rate: int,
        audiolevel_event: bool = False,
        talking_packets: int = 100,
        talking_level: int = 25,
    ) -> None:
        body = create_room(
            room,
            admin_key=admin_key,
            secret=secret,
            sampling_rate=sampling_rate,
            audiolevel_event=audiolevel_event,
            talking_packets=talking_packets,
            talking_level=talking_level,
        )
        await self.request(handle, body)

    async def destroy_room(self, handle: int, room: int, *, secret: str) -> None:
        await self.request(handle, destroy_room(room, secret=secret))

    async def join_rtp(
        self,
        handle: int,
        room: int,
        participant: int,
        *,
        display: str,
        codec: str,
        ip: str,
        port: int,
        muted: bool,
    ) -> RtpJoined:
        body = join_rtp(
            room, participant, display=display, codec=codec, ip=ip, port=port, muted=muted
        )
        return parse_joined(await self.request(handle, body))

    async def leave(self, handle: int) -> None:
        await self.request(handle, leave())

    async def kick(self, handle: int, room: int, participant: int, *, secret: str) -> None:
        await self.request(handle, kick(room, participant, secret=secret))

    async def set_muted(
        self, handle: int, room: int, participant: int, *, secret: str, muted: bool
    ) -> None:
        await self.request(handle, mute(room, participant, secret=secret, muted=muted))

    async def list_participants(self, handle: int, room: int) -> list[dict[str, Any]]:
        data = await self.request(handle, list_participants(room))
        participants = data.get("participants")
        return participants if isinstance(participants, list) else []

    @property
    def _session_url(self) -> str:
        return f"{self._base}/{self.session}"

    async def _post(
        self, url: str, payload: dict[str, Any], transaction: str | None = None
    ) -> dict[str, Any]:
        if self._http is None:
            raise JanusError(UNREACHABLE, "the client is not connected")
        message = {
            **payload,
            "transaction": transaction or f"t{next(self._transactions)}",
            "apisecret": self._secret,
        }
        try:
            async with self._http.post(
                url, json=message, timeout=aiohttp.ClientTimeout(total=self._request_timeout)
            ) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise JanusError(UNREACHABLE, f"{payload['janus']}: {type(exc).__name__}") from None
        if not isinstance(answer, dict):
            raise JanusError(UNREACHABLE, f"{payload['janus']}: not a JSON object")
        if (answer.get("error") or {}).get("code") == NO_SUCH_SESSION:
            # Destroyed behind our back: a pending long poll is not told, a request is.
            self._lose("janus forgot the session")
        return answer

    async def _poll(self) -> None:
        assert self._http is not None
        # The secret goes in the query string: that is how 1.1.2's long poll takes it (it is
        # not logged at the level we run Janus at; never log this URL).
        params = {"maxev": str(MAX_EVENTS), "apisecret": self._secret}
        failures = 0
        while self.lost is None:
            try:
                async with self._http.get(
                    self._session_url,
                    params=params,
                    timeout=aiohttp.ClientTimeout(total=POLL_TIMEOUT),
                ) as response:
                    if response.status == 404:
                        self._lose("janus forgot the session")
                        return
                    events = await response.json(content_type=None)
            except aiohttp.ClientConnectorError:
                self._lose("janus refuses connections")  # it is gone: no point retrying
                return
            except (aiohttp.ClientError, ValueError) as exc:
                # A dropped connection or a garbled answer from a Janus that still runs: losing
                # the session for it would re-join every phone on a new port.
                failures += 1
                if failures >= POLL_RETRIES:
                    self._lose(f"janus long poll failed: {type(exc).__name__}")
                    return
                await asyncio.sleep(0.1 * failures)
                continue
            except TimeoutError:
                continue
            failures = 0
            for event in events if isinstance(events, list) else [events]:
                self._dispatch(event)

    def _dispatch(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        kind = event.get("janus")
        if kind == "timeout":
            self._lose("janus timed the session out")
            return
        waiter = self._pending.get(str(event.get("transaction")))
        if waiter is not None and kind in ("event", "error") and not waiter.done():
            waiter.set_result(event)
        elif kind not in ("keepalive", "ack"):
            # Room notifications (joins, leaves, mute changes, talking) reach every handle in the
            # room; PeerConnection news (webrtcup, media, hangup) only the browser's own.
            data = (event.get("plugindata") or {}).get("data")
            log.debug("janus event", kind=kind, sender=event.get("sender"), data=data)
            if self.on_event is not None:
                try:
                    self.on_event(event)
                except Exception:
                    log.exception("janus event not handled", kind=kind)

    async def _keepalive(self) -> None:
        while self.lost is None:
            await asyncio.sleep(self._keepalive_interval)
            try:
                core_data(await self._post(self._session_url, {"janus": "keepalive"}))
            except JanusError as exc:
                if exc.code == UNREACHABLE:
                    continue  # the long poll notices a dead Janus; this may be a slow answer
                self._lose(f"janus refused the keepalive: {exc.reason}")
                return

    def _lose(self, reason: str) -> None:
        if self.lost is not None:
            return
        self.lost = reason
        log.warning("janus session lost", reason=reason)
        self._fail_pending(reason)
        if self.on_lost is not None:
            self.on_lost(reason)

    def _fail_pending(self, reason: str) -> None:
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(JanusError(UNREACHABLE, reason))
