"""A browser's meeting audio through the conference server (docs/mixer.md, Browsers): the console
sends its WebRTC offer and ICE candidates over its Socket.IO connection (namespace ``/chat``), the
server joins a ``web`` attendee to the conference and a participant to the meeting's AudioBridge
room, and answers with Janus's answer. The browser never talks to Janus: the server holds the
participant's handle, so a moderator's mute cannot be undone by the browser (a participant that
held its own handle could ``configure {"muted": false}``).

Socket requests (each acked ``{ok: true, …}`` or ``{ok: false, status, error, message}``):

- ``AUDIO_JOIN {topicId, meetingId, displayName?, offer: {type: "offer", sdp}}`` → ``{attendeeId,
  answer: {type: "answer", sdp}}``: one browser attendee per socket;
- ``AUDIO_CANDIDATE {attendeeId, candidate: {candidate, sdpMid, sdpMLineIndex} | null}``;
- ``AUDIO_RENEGOTIATE {attendeeId, offer}`` → ``{answer}`` (an ICE restart);
- ``AUDIO_LEAVE {attendeeId}``;
- ``TALKERS {topicId}`` → ``{talking: [attendeeId…]}``: who is talking now, for a console that
  opens while someone talks (``app.event.attendee.talking`` comes only when that changes).

Server to that socket alone: ``AUDIO_CANDIDATE {attendeeId, candidate}`` (Janus's, when it
trickles) and ``AUDIO_ENDED {attendeeId, reason}`` (removed by a moderator, the meeting ended, the
PeerConnection failed, the mixer restarted). A socket that goes (a closed page) leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from ..wire import WEB, Category, Role
from . import fields
from .errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from .model import JSON, Caller, Event
from .state import Conference

log = structlog.get_logger("bridge.conference.server.webrtc")

JOIN = "AUDIO_JOIN"
CANDIDATE = "AUDIO_CANDIDATE"
RENEGOTIATE = "AUDIO_RENEGOTIATE"
LEAVE = "AUDIO_LEAVE"
ENDED = "AUDIO_ENDED"
TALKERS = "TALKERS"

MAX_SDP = 16 * 1024
"""Largest SDP taken: a browser's audio-only offer is 1-5 KB (Socket.IO packets stop at 64 KiB)."""
MAX_CANDIDATE = 512
MAX_CANDIDATES = 64
"""Candidates one browser may trickle: a host has a handful per interface; more is a flood."""
ENDPOINT = "browser/1.1"
"""What the roster's ``endpoint`` says of a browser attendee."""

ROLES = (Role.MODERATOR, Role.MEMBER)
"""Who may join audio from a browser: attendees these tokens make are admitted at once. A guest
would wait in the lobby with an offer nobody answers yet (not supported); a bridge has phones."""


class MediaUnavailable(ApiError):  # noqa: N818  (named after what the client reads)
    """503 ``media_unavailable``: the mixer is down or refused the browser's offer."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "media_unavailable", message)


class Sync(Protocol):
    """``media.MediaSync`` as this module uses it."""

    def offer_browser(self, attendee_id: str, offer: dict[str, Any]) -> None: ...

    def take_answer(self, attendee_id: str) -> dict[str, Any] | None: ...

    def talkers(self, space_id: str) -> list[str]: ...

    async def publish(self, events: Sequence[Event]) -> None: ...


class Plane(Protocol):
    """``mixer.plane.MediaPlane`` as this module uses it."""

    @property
    def ready(self) -> bool: ...

    async def trickle(
        self, meeting_id: str, attendee_id: str, candidate: dict[str, Any] | None
    ) -> bool: ...

    async def renegotiate(
        self, meeting_id: str, attendee_id: str, offer: dict[str, Any]
    ) -> dict[str, Any] | None: ...


class Sockets(Protocol):
    """``realtime.Realtime`` as this module uses it."""

    def on(self, event: str, handler: Callable[[str, Caller, object], Awaitable[JSON]]) -> None: ...

    def on_disconnect(self, callback: Callable[[str], Awaitable[None]]) -> None: ...

    def listen(self, deliver: Callable[[JSON], None]) -> Callable[[], None]: ...

    async def send(self, sid: str, event: str, data: JSON) -> None: ...


@dataclass(slots=True)
class _Audio:
    """One browser's audio: its socket, who it is, where it is."""

    sid: str
    caller: Caller
    space_id: str
    meeting_id: str
    attendee_id: str
    candidates: int = 0
    ended: str | None = None
    """Why the server ends it (told to the browser with the ``left`` event that follows)."""


class BrowserAudio:
    """The signalling between browsers and the media plane, on the server's sockets."""

    def __init__(self, conference: Conference, sync: Sync, plane: Plane) -> None:
        self._conference = conference
        self._sync = sync
        self._plane = plane
        self._sockets: Sockets | None = None
        self._by_attendee: dict[str, _Audio] = {}
        self._by_sid: dict[str, _Audio] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, sockets: Sockets) -> None:
        """Answer the audio requests on ``sockets``, and follow the events that end an audio."""
        self._sockets = sockets
        sockets.on(JOIN, self.join)
        sockets.on(CANDIDATE, self.candidate)
        sockets.on(RENEGOTIATE, self.renegotiate)
        sockets.on(LEAVE, self.leave)
        sockets.on(TALKERS, self.talkers)
        sockets.on_disconnect(self.disconnected)
        sockets.listen(self._follow)

    # -- the socket requests ------------------------------------------------------------------
    async def join(self, sid: str, caller: Caller, data: object) -> JSON:
        body = fields.body_object(data)
        space_id = fields.req_str(body, "topicId")
        meeting_id = fields.req_str(body, "meetingId")
        name = fields.opt_str(body, "displayName") or caller.token_name
        offer = _offer(body)
        if caller.role not in ROLES:
            raise Forbidden(f"a {caller.role} token may not join audio from a browser")
        if sid in self._by_sid:
            raise Conflict("this socket has joined audio already", "audio_joined")
        if not self._plane.ready:
            raise MediaUnavailable("the meeting's mixer is not running")
        outcome = self._conference.join(
            caller,
            space_id,
            meeting_id,
            attendee_type=WEB,
            display_name=name,
            version="1.1",
            endpoint=ENDPOINT,
        )
        assert outcome.body is not None
        attendee_id = str(outcome.body["attendeeId"])
        audio = _Audio(sid, caller, space_id, meeting_id, attendee_id)
        self._by_attendee[attendee_id] = self._by_sid[sid] = audio
        self._sync.offer_browser(attendee_id, offer)
        await self._sync.publish(outcome.events)
        answer = self._sync.take_answer(attendee_id)
        if answer is None:
            # Refused by Janus (a bad offer) or down meanwhile: no attendee without audio.
            await self._end(audio, "no answer from the mixer")
            raise MediaUnavailable("the mixer did not take the offer")
        if sid not in self._by_sid:  # the page went while Janus answered: already undone
            raise MediaUnavailable("the socket closed")
        log.info("browser audio joined", attendee=attendee_id, meeting=meeting_id)
        return {"ok": True, "attendeeId": attendee_id, "answer": answer}

    async def candidate(self, sid: str, caller: Caller, data: object) -> JSON:
        body = fields.body_object(data)
        audio = self._own(sid, fields.req_str(body, "attendeeId"))
        found = _candidate(body.get("candidate"))
        audio.candidates += 1
        if audio.candidates > MAX_CANDIDATES:
            raise BadRequest(f"more than {MAX_CANDIDATES} candidates", "too_many_candidates")
        passed = await self._plane.trickle(audio.meeting_id, audio.attendee_id, found)
        return {"ok": True, "passed": passed}

    async def renegotiate(self, sid: str, caller: Caller, data: object) -> JSON:
        body = fields.body_object(data)
        audio = self._own(sid, fields.req_str(body, "attendeeId"))
        answer = await self._plane.renegotiate(audio.meeting_id, audio.attendee_id, _offer(body))
        if answer is None:
            raise MediaUnavailable("the mixer did not take the offer")
        return {"ok": True, "answer": answer}

    async def leave(self, sid: str, caller: Caller, data: object) -> JSON:
        body = fields.body_object(data)
        audio = self._own(sid, fields.req_str(body, "attendeeId"))
        await self._end(audio, None)
        return {"ok": True}

    async def talkers(self, sid: str, caller: Caller, data: object) -> JSON:
        space_id = fields.req_str(fields.body_object(data), "topicId")
        if not self._conference.has_space(space_id):
            raise NotFound(f"no space {space_id}")
        return {"ok": True, "talking": self._sync.talkers(space_id)}

    async def disconnected(self, sid: str) -> None:
        audio = self._by_sid.get(sid)
        if audio is not None:
            await self._end(audio, None)

    # -- the plane's news ---------------------------------------------------------------------
    async def lost(self, meeting_id: str, attendee_id: str, reason: str) -> None:
        """The PeerConnection is gone (``MediaPlane.on_browser_lost``): the attendee leaves."""
        audio = self._by_attendee.get(attendee_id)
        if audio is not None and audio.meeting_id == meeting_id:
            log.info("browser audio lost", attendee=attendee_id, reason=reason)
            await self._end(audio, reason)

    async def janus_candidate(
        self, meeting_id: str, attendee_id: str, candidate: dict[str, Any]
    ) -> None:
        """One of Janus's ICE candidates (``MediaPlane.on_browser_candidate``)."""
        audio = self._by_attendee.get(attendee_id)
        if audio is not None and self._sockets is not None:
            content = {"attendeeId": attendee_id, "candidate": candidate}
            await self._sockets.send(audio.sid, CANDIDATE, content)

    # -- helpers ------------------------------------------------------------------------------
    def _own(self, sid: str, attendee_id: str) -> _Audio:
        # The socket that joined, not just the same token: another page of the same moderator
        # must not steer this one's PeerConnection.
        audio = self._by_attendee.get(attendee_id)
        if audio is None or audio.sid != sid:
            raise NotFound(f"this socket has no audio as attendee {attendee_id}")
        return audio

    async def _end(self, audio: _Audio, reason: str | None) -> None:
        """The attendee leaves the conference (and so the mixer); the ``left`` event that the
        publication sends ends the audio here and tells the browser why."""
        audio.ended = reason or "left"
        try:
            outcome = self._conference.leave(
                audio.caller, audio.space_id, audio.meeting_id, WEB, audio.attendee_id
            )
        except ApiError:
            self._forget(audio)  # gone already (a moderator removed it, the meeting ended)
            return
        await self._sync.publish(outcome.events)
        self._forget(audio)

    def _forget(self, audio: _Audio) -> None:
        if self._by_attendee.get(audio.attendee_id) is audio:
            del self._by_attendee[audio.attendee_id]
        if self._by_sid.get(audio.sid) is audio:
            del self._by_sid[audio.sid]

    def _follow(self, payload: JSON) -> None:
        """Every published event: an attendee that left, or a meeting that ended, ends audio."""
        category, content = payload.get("category"), payload.get("content") or {}
        if category == Category.ATTENDEE_LEFT:
            one = self._by_attendee.get(str(content.get("attendeeId")))
            ended = [one] if one is not None else []
        elif category == Category.MEETING_ENDED:
            meeting = content.get("meetingId")
            ended = [a for a in self._by_attendee.values() if a.meeting_id == meeting]
        else:
            return
        for audio in ended:
            self._forget(audio)
            default = "the meeting ended" if category == Category.MEETING_ENDED else "removed"
            message = {"attendeeId": audio.attendee_id, "reason": audio.ended or default}
            self._spawn(self._tell(audio.sid, message))

    async def _tell(self, sid: str, message: JSON) -> None:
        if self._sockets is not None:
            with contextlib.suppress(Exception):  # the socket may be gone: nothing to tell
                await self._sockets.send(sid, ENDED, message)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="browser audio")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def refuse_audio(sockets: Sockets) -> None:
    """A server without a media plane: browsers are told so instead of waiting for an answer."""

    async def refuse(sid: str, caller: Caller, data: object) -> JSON:
        raise MediaUnavailable("this server has no media platform ([media_server])")

    async def nobody(sid: str, caller: Caller, data: object) -> JSON:
        return {"ok": True, "talking": []}

    for event in (JOIN, CANDIDATE, RENEGOTIATE, LEAVE):
        sockets.on(event, refuse)
    sockets.on(TALKERS, nobody)


def _offer(body: Mapping[str, object]) -> dict[str, Any]:
    """The browser's offer as a JSEP of our own making (``type`` and ``sdp`` only)."""
    offer = fields.body_object(body.get("offer"))
    sdp = offer.get("sdp")
    if offer.get("type") != "offer" or not isinstance(sdp, str):
        raise BadRequest('offer must be {"type": "offer", "sdp": "..."}', "bad_field")
    if not 0 < len(sdp) <= MAX_SDP or "m=audio" not in sdp:
        raise BadRequest(f"offer.sdp must be an audio SDP of at most {MAX_SDP} bytes", "bad_field")
    return {"type": "offer", "sdp": sdp}


def _candidate(value: object) -> dict[str, Any] | None:
    """An ``RTCIceCandidate``'s JSON (null: the browser has no more), rebuilt field by field."""
    if value is None:
        return None
    found = fields.body_object(value)
    text = found.get("candidate")
    if not isinstance(text, str) or len(text) > MAX_CANDIDATE:
        raise BadRequest("candidate.candidate must be a string", "bad_field")
    if text == "":
        return None  # the end-of-candidates marker some browsers send
    candidate: dict[str, Any] = {"candidate": text}
    mid = found.get("sdpMid")
    if isinstance(mid, str) and len(mid) <= 32:
        candidate["sdpMid"] = mid
    index = found.get("sdpMLineIndex")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 16:
        candidate["sdpMLineIndex"] = index
    return candidate
