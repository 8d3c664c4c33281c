"""The conference server's media plane: :class:`MediaPlane`, one AudioBridge room per meeting, one
plain-RTP participant per phone attendee and one WebRTC participant per browser attendee, in a
Janus this object starts and supervises.

The server speaks meeting and attendee ids; Janus numeric room and participant ids stay in the
plane (here, and in :mod:`.events`, which routes Janus's own events by them).
Every Janus handle is this object's: a participant can undo a moderator's ``mute`` with
``configure`` on its own handle, so no handle is ever given out, and mutes are the room
administrator's ``mute``/``unmute`` (with the room secret) on a handle of its own.

Janus keeps rooms in memory only. After Janus restarts (or its session with us is lost), the
plane makes a new session, recreates every room it knows and re-joins every phone with its mute
state; a re-joined participant has a new Janus RTP port, so ``on_endpoint_changed`` tells the
server, which tells the bridge to move that call's meeting leg. A browser's PeerConnection dies
with its session: ``on_browser_lost`` tells the server, which ends that attendee's audio (the
browser may join again with a new offer). docs/mixer.md describes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from ...wire import MediaEndpoint, MediaOffer
from .audiobridge import (
    ROOM_EXISTS,
    AudioBridgeClient,
    JanusError,
    join_webrtc,
    renegotiation,
)
from .events import JanusEvents
from .janus import JanusConfig, JanusProcess
from .rooms import (
    BrowserCandidate,
    BrowserLost,
    EndpointChanged,
    Member,
    Room,
    Talking,
    choose_codec,
)

log = structlog.get_logger("bridge.conference.server.mixer")

T = TypeVar("T")

TALKING_PACKETS = 25
"""Talking is decided every 25 packets (0.5 s) of a browser's audio, not Janus's default 100
(2 s): a speaking indicator that lags by two seconds points at the wrong person."""
TALKING_LEVEL = 25
"""Mean audio level under which a participant talks, in -dBov (Janus's default: -25 dBov)."""

RESYNC_DELAY = 0.5
"""After a lost session, how long the plane waits before making a new one: when Janus died, its
supervisor notices within that time, and the restart's own resync does the work instead."""


class MediaPlane:
    """The server-facing media plane. Use from one event loop; every method may be called while
    Janus is down (``add_phone`` then answers None; mutes are kept and applied at the re-join)."""

    def __init__(
        self,
        config: JanusConfig | None = None,
        *,
        on_endpoint_changed: EndpointChanged | None = None,
    ) -> None:
        self.janus = JanusProcess(config or JanusConfig(), on_restart=self._on_restart)
        self.on_endpoint_changed = on_endpoint_changed
        self.on_synced: Callable[[], Awaitable[None]] | None = None
        """Called after every (re)synchronisation: the owner may add what the plane could not
        take while Janus was down."""
        self.on_talking: Talking | None = None
        self.on_browser_lost: BrowserLost | None = None
        self.on_browser_candidate: BrowserCandidate | None = None
        # Janus's room and handle numbers -> the rooms and browsers its events are about.
        self._events = JanusEvents(self, detach=self._detach_lost)
        self._client: AudioBridgeClient | None = None
        self._control: int | None = None  # the handle room requests and mutes go through
        self._generation = 0
        self._rooms: dict[str, Room] = {}
        self._ids = itertools.count(1)
        self._sync_lock = asyncio.Lock()
        self._resync_task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def ready(self) -> bool:
        return self.janus.ready and self._client is not None and self._client.open

    @property
    def reason(self) -> str | None:
        """Why the plane is not ready (for ``/readyz``), None while it is."""
        if self.janus.reason is not None:
            return self.janus.reason
        if self._client is None or not self._client.open:
            return "janus session is being re-established"
        return None

    async def start(self) -> None:
        """Start Janus (:class:`~.janus.JanusUnavailable` when it is not installed) and open a
        session. A Janus that does not start leaves the plane not ready, retrying."""
        self._closing = False
        await self.janus.start()
        if self.janus.ready:
            await self._resync("start")

    async def close(self) -> None:
        self._closing = True
        if self._resync_task is not None:
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync_task
        async with self._sync_lock:
            if self._client is not None:
                await self._client.close()
                self._client = None
        # Rooms live in Janus's memory only: stopping it is their end.
        await self.janus.stop()
        self._rooms.clear()

    async def add_phone(
        self,
        meeting_id: str,
        attendee_id: str,
        display_name: str,
        offer: MediaOffer,
        muted: bool,
    ) -> MediaEndpoint | None:
        """Join a phone to its meeting's room (made on first use): where the bridge is to send
        its audio, or None when Janus is down or refuses. A second call for the same attendee
        replaces its participant (a new endpoint)."""
        codec = choose_codec(offer.codecs)
        if not isinstance(ipaddress.ip_address(offer.host), ipaddress.IPv4Address):
            log.warning("no mix for an IPv6 media offer", meeting=meeting_id, attendee=attendee_id)
            return None
        phone = Member(attendee_id, display_name, muted, offer, codec)

        async def join(client: AudioBridgeClient, room: Room) -> MediaEndpoint | None:
            await self._join(client, room, phone)
            return phone.endpoint

        return await self._add(meeting_id, phone, join)

    async def add_browser(
        self,
        meeting_id: str,
        attendee_id: str,
        display_name: str,
        offer: dict[str, Any],
        muted: bool,
    ) -> dict[str, Any] | None:
        """Join a browser to its meeting's room with its JSEP ``offer`` (``{"type": "offer",
        "sdp"}``): Janus's JSEP answer, or None when Janus is down or refuses the offer. The
        handle stays the plane's: the browser reaches Janus only through the server, so it can
        neither ``configure`` itself unmuted nor touch the room."""
        browser = Member(attendee_id, display_name, muted)

        async def join(client: AudioBridgeClient, room: Room) -> dict[str, Any]:
            return await self._join_browser(client, room, browser, offer)

        return await self._add(meeting_id, browser, join)

    async def renegotiate(
        self, meeting_id: str, attendee_id: str, offer: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A new offer from a browser in the mix (an ICE restart): Janus's answer, or None. Sent
        as a ``configure`` with no other field, so a mute stays a mute."""
        room = self._rooms.get(meeting_id)
        if room is None:
            return None
        async with room.lock:
            found = self._browser(meeting_id, attendee_id)
            if found is None:
                return None
            client, browser, handle = found
            began = time.monotonic()
            try:
                _, answer = await client.negotiate(handle, renegotiation(), offer)
            except JanusError as exc:
                log.warning("renegotiation refused", attendee=attendee_id, reason=exc.reason)
                return None
            log.info(
                "browser renegotiated",
                attendee=attendee_id,
                muted=browser.muted,
                ms=round((time.monotonic() - began) * 1000, 1),
            )
            return answer

    async def trickle(
        self, meeting_id: str, attendee_id: str, candidate: dict[str, Any] | None
    ) -> bool:
        """Pass one of a browser's ICE candidates (None: it has no more) to its PeerConnection
        in Janus; False when the browser is not in the mix."""
        found = self._browser(meeting_id, attendee_id)
        if found is None:
            return False
        client, _, handle = found
        try:
            await client.trickle(handle, candidate)
        except JanusError as exc:
            log.info("candidate not passed", attendee=attendee_id, reason=exc.reason)
            return False
        return True

    async def remove(self, meeting_id: str, attendee_id: str) -> None:
        """Take a phone or browser out of its meeting's room (nothing when it is not in one)."""
        room = self._rooms.get(meeting_id)
        if room is None:
            return
        async with room.lock:
            client = self._client
            if client is not None:
                await self._replace(client, room, attendee_id)
            else:
                room.members.pop(attendee_id, None)

    async def set_muted(self, meeting_id: str, attendee_id: str, muted: bool) -> None:
        """Mute or unmute a phone or browser in the mix. Kept while Janus is down, applied at the
        re-join (a phone's; a browser's audio ends with the session)."""
        room = self._rooms.get(meeting_id)
        if room is None:
            return
        async with room.lock:
            phone = room.members.get(attendee_id)
            if phone is None:
                return
            phone.muted = muted
            client, control = self._client, self._control
            if client is None or control is None or not self._live(phone):
                return
            try:
                await client.set_muted(
                    control,
                    room.room,
                    phone.participant,
                    secret=self.janus.secrets.room_secret,
                    muted=muted,
                )
            except JanusError as exc:
                log.warning(
                    "mute not applied",
                    meeting=meeting_id,
                    attendee=attendee_id,
                    muted=muted,
                    code=exc.code,
                    reason=exc.reason,
                )

    async def end_meeting(self, meeting_id: str) -> None:
        """Destroy the meeting's room, and with it its participants."""
        room = self._rooms.pop(meeting_id, None)
        if room is None:
            return
        self._events.rooms.pop(room.room, None)
        async with room.lock:
            room.ended = True
            for member in room.members.values():
                if member.handle is not None:
                    self._events.handles.pop(member.handle, None)
            client, control = self._client, self._control
            if client is None or control is None or room.generation != self._generation:
                return
            try:
                await client.destroy_room(control, room.room, secret=self.janus.secrets.room_secret)
            except JanusError as exc:
                log.warning("room not destroyed", meeting=meeting_id, reason=exc.reason)
            for member in room.members.values():
                if member.handle is not None and self._live(member):
                    with contextlib.suppress(JanusError):
                        await client.detach(member.handle)

    async def participants(self, meeting_id: str) -> list[dict[str, Any]]:
        """Janus's own list of the meeting room's participants (``id``, ``display``, ``muted``...),
        for diagnostics; empty when the room or Janus is not there."""
        room = self._rooms.get(meeting_id)
        client, control = self._client, self._control
        if room is None or client is None or control is None or not self.ready:
            return []
        try:
            return await client.list_participants(control, room.room)
        except JanusError:
            return []

    async def _add(
        self,
        meeting_id: str,
        member: Member,
        join: Callable[[AudioBridgeClient, Room], Awaitable[T]],
    ) -> T | None:
        """Join ``member`` to the meeting's room (made on first use) with ``join``, replacing the
        attendee's previous participant; None when Janus is down or refuses."""
        kind = "browser" if member.browser else "phone"
        while True:
            room = self._room(meeting_id)
            async with room.lock:
                if room.ended:  # end_meeting ran while we waited: a new room, if at all
                    continue
                client = self._client
                if client is None or not self.ready:
                    return None
                began = time.monotonic()
                try:
                    await self._replace(client, room, member.attendee_id)
                    await self._ensure_room(client, room)
                    result = await join(client, room)
                except JanusError as exc:
                    log.warning(
                        f"{kind} not added to the mix",
                        meeting=meeting_id,
                        attendee=member.attendee_id,
                        code=exc.code,
                        reason=exc.reason,
                    )
                    return None
                room.members[member.attendee_id] = member
                log.info(
                    f"{kind} added to the mix",
                    meeting=meeting_id,
                    attendee=member.attendee_id,
                    ms=round((time.monotonic() - began) * 1000, 1),
                    **({"port": member.endpoint.port} if member.endpoint else {}),
                )
                return result

    def _browser(
        self, meeting_id: str, attendee_id: str
    ) -> tuple[AudioBridgeClient, Member, int] | None:
        """The client, browser and its handle, when it is in this session's mix."""
        room = self._rooms.get(meeting_id)
        browser = room.members.get(attendee_id) if room is not None else None
        client = self._client
        if browser is None or not browser.browser or client is None or not self._live(browser):
            return None
        return None if browser.handle is None else (client, browser, browser.handle)

    def _live(self, member: Member) -> bool:
        return member.generation == self._generation

    def _room(self, meeting_id: str) -> Room:
        room = self._rooms.get(meeting_id)
        if room is None:
            room = self._rooms[meeting_id] = Room(meeting_id, next(self._ids))
            self._events.rooms[room.room] = room
        return room

    async def _replace(self, client: AudioBridgeClient, room: Room, attendee_id: str) -> None:
        """Take the attendee's participant, if any, out of the room (under its lock)."""
        old = room.members.pop(attendee_id, None)
        if old is not None and self._live(old):
            await self._leave(client, old)

    async def _ensure_room(self, client: AudioBridgeClient, room: Room) -> None:
        if room.generation == self._generation:
            return
        assert self._control is not None
        secrets = self.janus.secrets
        try:
            await client.create_room(
                self._control,
                room.room,
                admin_key=secrets.admin_key,
                secret=secrets.room_secret,
                sampling_rate=self.janus.config.sampling_rate,
                # Browsers send the audio-level extension: Janus then says who talks.
                audiolevel_event=True,
                talking_packets=TALKING_PACKETS,
                talking_level=TALKING_LEVEL,
            )
        except JanusError as exc:
            # Still there after a lost session (Janus itself went on): its participants left
            # with the session's handles, the room stayed.
            if exc.code != ROOM_EXISTS:
                raise
        room.generation = self._generation

    async def _join(self, client: AudioBridgeClient, room: Room, phone: Member) -> None:
        assert phone.offer is not None
        handle = await client.attach()
        # A new id for every join: after a lost session the old participant may linger a moment.
        participant = next(self._ids)
        try:
            joined = await client.join_rtp(
                handle,
                room.room,
                participant,
                display=phone.display_name,
                codec=phone.codec,
                ip=phone.offer.host,
                port=phone.offer.port,
                muted=phone.muted,
            )
        except JanusError:
            with contextlib.suppress(JanusError):
                await client.detach(handle)
            raise
        phone.participant, phone.handle, phone.generation = participant, handle, self._generation
        phone.endpoint = MediaEndpoint(joined.ip, joined.port, phone.codec, joined.payload_type)

    async def _join_browser(
        self, client: AudioBridgeClient, room: Room, browser: Member, offer: dict[str, Any]
    ) -> dict[str, Any]:
        handle = await client.attach()
        participant = next(self._ids)
        body = join_webrtc(
            room.room, participant, display=browser.display_name, muted=browser.muted
        )
        # Known before the answer: Janus's first events about this handle may come with it.
        browser.participant, browser.handle = participant, handle
        browser.generation, browser.joined_at = self._generation, time.monotonic()
        self._events.handles[handle] = (room, browser)
        try:
            _, answer = await client.negotiate(handle, body, offer)
        except JanusError:
            self._events.handles.pop(handle, None)
            with contextlib.suppress(JanusError):
                await client.detach(handle)
            raise
        return answer

    async def _leave(self, client: AudioBridgeClient, member: Member) -> None:
        if member.handle is None or not self._live(member):
            return
        # Forgotten first: the hangup Janus sends for a browser we detach is not a loss.
        self._events.handles.pop(member.handle, None)
        # Detaching alone would remove the participant too; leave first so that it is out of
        # the mix before we answer.
        with contextlib.suppress(JanusError):
            await client.leave(member.handle)
        with contextlib.suppress(JanusError):
            await client.detach(member.handle)
        member.handle = None

    # -- Janus's events ---------------------------------------------------------------------------
    async def _detach_lost(self, browser: Member) -> None:
        client, handle = self._client, browser.handle
        browser.handle = None
        if client is not None and handle is not None and self._live(browser):
            with contextlib.suppress(JanusError):
                await client.detach(handle)

    async def _on_restart(self) -> None:
        await self._resync("janus restarted")

    def _on_lost(self, reason: str) -> None:
        if self._closing or (self._resync_task is not None and not self._resync_task.done()):
            return
        self._resync_task = asyncio.create_task(self._resync_later(reason), name="media resync")

    async def _resync_later(self, reason: str) -> None:
        await asyncio.sleep(RESYNC_DELAY)
        if self.janus.ready and not self._closing:
            await self._resync(reason, only_if_lost=True)

    async def _resync(self, why: str, *, only_if_lost: bool = False) -> None:
        """A new session, then every known room and phone into it; ``on_endpoint_changed`` for
        each phone that had joined before. ``only_if_lost``: unless another resync (a restart's)
        has made a session that is still open."""
        changed: list[tuple[str, str, MediaEndpoint]] = []
        lost: list[tuple[str, str]] = []
        async with self._sync_lock:
            if only_if_lost and self._client is not None and self._client.open:
                return
            if self._client is not None:
                await self._client.close()
            self._client = self._control = None
            began = time.monotonic()
            client = AudioBridgeClient(
                self.janus.api_url,
                self.janus.secrets.api_secret,
                keepalive_interval=self.janus.config.keepalive_interval,
                on_lost=self._on_lost,
            )
            client.on_event = self._events.on_event
            try:
                await client.connect()
                control = await client.attach()
            except JanusError as exc:
                log.warning("janus session not opened", reason=exc.reason, why=why)
                await client.close()
                return
            self._generation += 1
            self._client, self._control = client, control
            self._events.handles.clear()
            joined = 0
            for room in list(self._rooms.values()):
                async with room.lock:
                    # A browser's PeerConnection was with the old session: it needs a new offer.
                    for member in [m for m in room.members.values() if m.browser]:
                        del room.members[member.attendee_id]
                        lost.append((room.meeting_id, member.attendee_id))
                    if room.ended:
                        continue
                    try:
                        await self._ensure_room(client, room)
                    except JanusError as exc:
                        log.warning(
                            "room not recreated", meeting=room.meeting_id, reason=exc.reason
                        )
                        continue
                    for phone in room.members.values():
                        had_joined = phone.endpoint is not None
                        try:
                            await self._join(client, room, phone)
                        except JanusError as exc:
                            # Kept: the next resync tries again; the bridge keeps the old port.
                            log.warning(
                                "phone not re-joined",
                                meeting=room.meeting_id,
                                attendee=phone.attendee_id,
                                reason=exc.reason,
                            )
                            continue
                        joined += 1
                        if had_joined and phone.endpoint is not None:
                            changed.append((room.meeting_id, phone.attendee_id, phone.endpoint))
            log.info(
                "media plane synced",
                why=why,
                rooms=len(self._rooms),
                phones=joined,
                ms=round((time.monotonic() - began) * 1000, 1),
            )
        if self.on_browser_lost is not None:
            for meeting_id, attendee_id in lost:
                try:
                    await self.on_browser_lost(meeting_id, attendee_id, f"mixer resync: {why}")
                except Exception:
                    log.exception("browser loss not delivered", meeting=meeting_id)
        tell = self.on_endpoint_changed
        if tell is not None:
            for meeting_id, attendee_id, endpoint in changed:
                try:
                    await tell(meeting_id, attendee_id, endpoint)
                except Exception:
                    log.exception("endpoint change not delivered", meeting=meeting_id)
        if self.on_synced is not None:
            try:
                await self.on_synced()
            except Exception:
                log.exception("media resync of the conference failed")
