"""A browser's audio signalling (``webrtc.BrowserAudio``) and its place in the mixer
(``media.MediaSync``) with the real rules and a recording fake of the media plane: the join makes a
``web`` attendee and hands the offer (rebuilt: type and sdp only) to the mixer, mutes reach the
mixer and a renegotiation carries nothing else, only the socket that joined steers the audio, and
talking shows only while the conference has the attendee unmuted. The real Janus path is
tests/interop/test_console_audio.py."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from bridge.conference.server.config import SpaceConfig
from bridge.conference.server.errors import ApiError
from bridge.conference.server.media import MediaSync
from bridge.conference.server.model import JSON, Caller, Event
from bridge.conference.server.state import Conference
from bridge.conference.server.webrtc import MAX_CANDIDATES, BrowserAudio
from bridge.conference.wire import Category, MediaEndpoint, MediaOffer, Role

MOD = Caller("console", Role.MODERATOR)
GUEST = Caller("visitor", Role.GUEST)
SDP = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
OFFER = {"type": "offer", "sdp": SDP}
ANSWER = {"type": "answer", "sdp": "v=0\r\nm=audio 1 UDP/TLS/RTP/SAVPF 111\r\n"}


class Plane:
    """Records what the sync and the signalling ask of the mixer."""

    def __init__(self) -> None:
        self.ready = True
        self.calls: list[tuple[str, ...]] = []
        self.offers: list[dict[str, Any]] = []
        self.candidates: list[dict[str, Any] | None] = []
        self.refuse = False

    async def add_phone(
        self, meeting_id: str, attendee_id: str, name: str, offer: MediaOffer, muted: bool
    ) -> MediaEndpoint | None:
        self.calls.append(("add_phone", attendee_id, str(muted)))
        return MediaEndpoint("127.0.0.1", 30000, "PCMU", 0)

    async def add_browser(
        self, meeting_id: str, attendee_id: str, name: str, offer: dict[str, Any], muted: bool
    ) -> dict[str, Any] | None:
        self.calls.append(("add_browser", attendee_id, str(muted)))
        self.offers.append(offer)
        return None if self.refuse else ANSWER

    async def remove(self, meeting_id: str, attendee_id: str) -> None:
        self.calls.append(("remove", attendee_id))

    async def set_muted(self, meeting_id: str, attendee_id: str, muted: bool) -> None:
        self.calls.append(("set_muted", attendee_id, str(muted)))

    async def end_meeting(self, meeting_id: str) -> None:
        self.calls.append(("end_meeting", meeting_id))

    async def trickle(
        self, meeting_id: str, attendee_id: str, candidate: dict[str, Any] | None
    ) -> bool:
        self.candidates.append(candidate)
        return True

    async def renegotiate(
        self, meeting_id: str, attendee_id: str, offer: dict[str, Any]
    ) -> dict[str, Any] | None:
        self.calls.append(("renegotiate", attendee_id))
        self.offers.append(offer)
        return ANSWER


class Sockets:
    """The realtime side: handlers by event, what was sent to which socket, the event stream."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[str, Caller, object], Awaitable[JSON]]] = {}
        self.gone: list[Callable[[str], Awaitable[None]]] = []
        self.listeners: list[Callable[[JSON], None]] = []
        self.sent: list[tuple[str, str, JSON]] = []
        self.events: list[Event] = []

    def on(self, event: str, handler: Callable[[str, Caller, object], Awaitable[JSON]]) -> None:
        self.handlers[event] = handler

    def on_disconnect(self, callback: Callable[[str], Awaitable[None]]) -> None:
        self.gone.append(callback)

    def listen(self, deliver: Callable[[JSON], None]) -> Callable[[], None]:
        self.listeners.append(deliver)
        return lambda: None

    async def send(self, sid: str, event: str, data: JSON) -> None:
        self.sent.append((sid, event, data))

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            self.events.append(event)
            for deliver in self.listeners:
                deliver(event.payload())

    async def call(self, event: str, sid: str, data: object, caller: Caller = MOD) -> JSON:
        try:
            return await self.handlers[event](sid, caller, data)
        except ApiError as exc:
            return {"ok": False, "status": exc.status, "error": exc.code}

    def talking(self) -> list[tuple[str, bool]]:
        return [
            (e.content["attendeeId"], e.content["talking"])
            for e in self.events
            if e.category is Category.ATTENDEE_TALKING
        ]


class World:
    def __init__(self) -> None:
        counter = itertools.count(1)
        self.conference = Conference(
            [SpaceConfig("demo", "Demo")], ids=lambda: f"id{next(counter)}", now=lambda: 0.0
        )
        self.meeting = str(self.conference.active_meeting(MOD, "demo").body["meetingId"])  # type: ignore[index]
        self.plane = Plane()
        self.sockets = Sockets()
        self.sync = MediaSync(self.conference, self.plane, self.sockets)
        self.audio = BrowserAudio(self.conference, self.sync, self.plane)
        self.audio.attach(self.sockets)

    async def join(self, sid: str = "s1", caller: Caller = MOD, **extra: Any) -> JSON:
        body = {"topicId": "demo", "meetingId": self.meeting, "offer": OFFER, **extra}
        return await self.sockets.call("AUDIO_JOIN", sid, body, caller)

    async def mute(self, attendee_id: str, audio: bool) -> None:
        outcome = self.conference.set_media(
            Caller("other", Role.MODERATOR), "demo", self.meeting, "web", attendee_id, audio=audio
        )
        await self.sync.publish(outcome.events)

    def attendee(self, attendee_id: str) -> Any:
        return self.conference.attendee("demo", attendee_id)


def run(body: Callable[[World], Awaitable[None]]) -> None:
    async def main() -> None:
        world = World()
        await body(world)
        await asyncio.sleep(0)  # the socket messages' tasks

    asyncio.run(main())


def test_a_join_makes_a_web_attendee_in_the_mix_with_the_offer_rebuilt() -> None:
    async def body(w: World) -> None:
        sneaky = {**OFFER, "e2ee": True, "muted": False}
        ack = await w.join(offer=sneaky, displayName="Moderator's desk")
        assert ack["ok"] is True and ack["answer"] == ANSWER
        attendee = w.attendee(ack["attendeeId"])
        assert (attendee.type, attendee.role, attendee.display_name) == (
            "web",
            Role.MODERATOR,
            "Moderator's desk",
        )
        assert w.plane.calls == [("add_browser", ack["attendeeId"], "False")]
        assert w.plane.offers == [OFFER]  # nothing but type and sdp reaches Janus
        assert [e.category for e in w.sockets.events] == [Category.ATTENDEE_JOINED]

    run(body)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"offer": {"type": "answer", "sdp": SDP}}, 400, "bad_field"),
        ({"offer": {"type": "offer", "sdp": "v=0\r\nm=video 9 x 96\r\n"}}, 400, "bad_field"),
        ({"offer": {"type": "offer", "sdp": "m=audio " + "x" * 20000}}, 400, "bad_field"),
        ({"meetingId": "elsewhere"}, 404, "not_found"),
    ],
)
def test_a_bad_join_is_refused_without_an_attendee(
    change: dict[str, Any], status: int, code: str
) -> None:
    async def body(w: World) -> None:
        ack = await w.join(**change)
        assert (ack["ok"], ack["status"], ack["error"]) == (False, status, code)
        assert w.conference.attendees("demo") == [] and w.plane.calls == []

    run(body)


def test_guests_a_second_join_and_a_stopped_mixer_are_refused() -> None:
    async def body(w: World) -> None:
        assert (await w.join(caller=GUEST))["status"] == 403
        assert (await w.join())["ok"] is True
        assert (await w.join())["error"] == "audio_joined"  # one audio per socket
        w.plane.ready = False
        assert (await w.join("s2"))["error"] == "media_unavailable"
        w.plane.ready = True
        w.plane.refuse = True  # Janus refused the offer: no attendee without audio
        assert (await w.join("s3"))["error"] == "media_unavailable"
        assert len(w.conference.attendees("demo")) == 1

    run(body)


def test_only_the_socket_that_joined_steers_the_audio() -> None:
    async def body(w: World) -> None:
        attendee = (await w.join())["attendeeId"]
        candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
        other = await w.sockets.call("AUDIO_CANDIDATE", "s2", {"attendeeId": attendee})
        assert other["status"] == 404
        data = {"attendeeId": attendee, "candidate": {**candidate, "extra": 1}}
        assert (await w.sockets.call("AUDIO_CANDIDATE", "s1", data))["ok"] is True
        done = {"attendeeId": attendee, "candidate": None}
        assert (await w.sockets.call("AUDIO_CANDIDATE", "s1", done))["ok"] is True
        assert w.plane.candidates == [candidate, None]
        for _ in range(MAX_CANDIDATES):
            await w.sockets.call("AUDIO_CANDIDATE", "s1", data)
        assert (await w.sockets.call("AUDIO_CANDIDATE", "s1", data))["status"] == 400
        left = await w.sockets.call("AUDIO_LEAVE", "s2", {"attendeeId": attendee})
        assert left["status"] == 404 and w.attendee(attendee) is not None

    run(body)


def test_a_mute_reaches_the_mixer_and_a_renegotiation_carries_only_the_offer() -> None:
    async def body(w: World) -> None:
        attendee = (await w.join())["attendeeId"]
        await w.mute(attendee, False)
        assert w.plane.calls[-1] == ("set_muted", attendee, "True")
        data = {"attendeeId": attendee, "offer": {**OFFER, "muted": False}, "muted": False}
        ack = await w.sockets.call("AUDIO_RENEGOTIATE", "s1", data)
        assert ack == {"ok": True, "answer": ANSWER}
        assert ("renegotiate", attendee) in w.plane.calls and w.plane.offers[-1] == OFFER
        assert w.attendee(attendee).audio is False
        await w.mute(attendee, True)
        # Mute all by another moderator mutes the browser in the mixer too.
        other = Caller("other", Role.MODERATOR)
        await w.sync.publish(w.conference.mute_all(other, "demo", w.meeting).events)
        assert w.plane.calls[-1] == ("set_muted", attendee, "True")

    run(body)


def test_talking_shows_only_while_unmuted() -> None:
    async def body(w: World) -> None:
        attendee = (await w.join())["attendeeId"]
        await w.sync.talking(w.meeting, attendee, True)
        await w.sync.talking(w.meeting, attendee, True)  # no change, no event
        assert w.sockets.talking() == [(attendee, True)]
        assert w.sync.talkers("demo") == [attendee]
        await w.mute(attendee, False)
        assert w.sockets.talking()[-1] == (attendee, False)
        assert w.sockets.events[-1].category is Category.ATTENDEE_TALKING
        await w.mute(attendee, True)  # Janus's last word was "talking"
        assert w.sockets.talking()[-1] == (attendee, True)
        await w.sync.talking(w.meeting, attendee, False)
        assert w.sockets.talking()[-1] == (attendee, False) and w.sync.talkers("demo") == []
        talkers = await w.sockets.call("TALKERS", "s1", {"topicId": "demo"})
        assert talkers == {"ok": True, "talking": []}

    run(body)


def test_leaving_closing_the_page_or_the_meetings_end_take_the_browser_out() -> None:
    async def body(w: World) -> None:
        one = (await w.join("s1"))["attendeeId"]
        two = (await w.join("s2"))["attendeeId"]
        three = (await w.join("s3"))["attendeeId"]
        assert (await w.sockets.call("AUDIO_LEAVE", "s1", {"attendeeId": one}))["ok"] is True
        await w.sockets.gone[0]("s2")  # the page closed
        assert w.attendee(one) is None and w.attendee(two) is None
        assert ("remove", one) in w.plane.calls and ("remove", two) in w.plane.calls
        await w.audio.lost(w.meeting, three, "ice failed")
        assert w.attendee(three) is None
        await asyncio.sleep(0)
        ended = [(sid, data["reason"]) for sid, event, data in w.sockets.sent]
        assert ("s3", "ice failed") in ended
        four = (await w.join("s4"))["attendeeId"]
        outcome = w.conference.end_meeting(MOD, "demo", w.meeting)
        await w.sync.publish(outcome.events)
        await asyncio.sleep(0)
        assert w.sockets.sent[-1] == (
            "s4",
            "AUDIO_ENDED",
            {"attendeeId": four, "reason": "the meeting ended"},
        )
        assert (await w.sockets.call("AUDIO_LEAVE", "s4", {"attendeeId": four}))["status"] == 404

    run(body)
