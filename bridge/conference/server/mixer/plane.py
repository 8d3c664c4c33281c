"""The conference server's media plane: :class:`MediaPlane`, one AudioBridge room per meeting and
one plain-RTP participant per phone attendee, in a Janus this object starts and supervises.

The server speaks meeting and attendee ids; Janus numeric room and participant ids stay in here.
Every Janus handle is this object's: a participant can undo a moderator's ``mute`` with
``configure`` on its own handle, so no handle is ever given out, and mutes are the room
administrator's ``mute``/``unmute`` (with the room secret) on a handle of its own.

Janus keeps rooms in memory only. After Janus restarts (or its session with us is lost), the
plane makes a new session, recreates every room it knows and re-joins every phone with its mute
state; a re-joined participant has a new Janus RTP port, so ``on_endpoint_changed`` tells the
server, which tells the bridge to move that call's meeting leg. docs/mixer.md describes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from ...wire import MediaEndpoint, MediaOffer
from .audiobridge import CODECS, ROOM_EXISTS, AudioBridgeClient, JanusError
from .janus import JanusConfig, JanusProcess

log = structlog.get_logger("bridge.conference.server.mixer")

EndpointChanged = Callable[[str, str, MediaEndpoint], Awaitable[None]]
"""``(meeting_id, attendee_id, endpoint)``: where a re-joined phone's audio now goes."""

RESYNC_DELAY = 0.5
"""After a lost session, how long the plane waits before making a new one: when Janus died, its
supervisor notices within that time, and the restart's own resync does the work instead."""


def choose_codec(codecs: Iterable[str]) -> str:
    """The first of the offer's codecs AudioBridge takes."""
    for codec in codecs:
        if codec.upper() in CODECS:
            return codec.upper()
    raise ValueError(f"no G.711 codec among {list(codecs)}")


@dataclass(eq=False)
class _Phone:
    attendee_id: str
    display_name: str
    offer: MediaOffer
    codec: str
    muted: bool
    participant: int = 0
    handle: int | None = None
    endpoint: MediaEndpoint | None = None
    generation: int = -1
    """The session it joined in: a phone of an older one is not in Janus any more."""


@dataclass(eq=False)
class _Room:
    meeting_id: str
    room: int
    phones: dict[str, _Phone] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held across a room's requests, so that a join, a mute and a removal apply in order."""
    generation: int = -1
    ended: bool = False


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
        self._client: AudioBridgeClient | None = None
        self._control: int | None = None  # the handle room requests and mutes go through
        self._generation = 0
        self._rooms: dict[str, _Room] = {}
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
        while True:
            room = self._rooms.get(meeting_id)
            if room is None:
                room = self._rooms[meeting_id] = _Room(meeting_id, next(self._ids))
            async with room.lock:
                if room.ended:  # end_meeting ran while we waited: a new room, if at all
                    continue
                client = self._client
                if client is None or not self.ready:
                    return None
                old = room.phones.pop(attendee_id, None)
                phone = _Phone(attendee_id, display_name, offer, codec, muted)
                began = time.monotonic()
                try:
                    if old is not None:
                        await self._leave(client, old)
                    await self._ensure_room(client, room)
                    await self._join(client, room, phone)
                except JanusError as exc:
                    log.warning(
                        "phone not added to the mix",
                        meeting=meeting_id,
                        attendee=attendee_id,
                        code=exc.code,
                        reason=exc.reason,
                    )
                    return None
                room.phones[attendee_id] = phone
                log.info(
                    "phone added to the mix",
                    meeting=meeting_id,
                    attendee=attendee_id,
                    port=phone.endpoint.port if phone.endpoint else None,
                    ms=round((time.monotonic() - began) * 1000, 1),
                )
                return phone.endpoint

    async def remove(self, meeting_id: str, attendee_id: str) -> None:
        """Take a phone out of its meeting's room (nothing when it is not in one)."""
        room = self._rooms.get(meeting_id)
        if room is None:
            return
        async with room.lock:
            phone = room.phones.pop(attendee_id, None)
            client = self._client
            if phone is not None and client is not None and self._live(phone):
                await self._leave(client, phone)

    async def set_muted(self, meeting_id: str, attendee_id: str, muted: bool) -> None:
        """Mute or unmute a phone in the mix. Kept while Janus is down, applied at the re-join."""
        room = self._rooms.get(meeting_id)
        if room is None:
            return
        async with room.lock:
            phone = room.phones.get(attendee_id)
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
        async with room.lock:
            room.ended = True
            client, control = self._client, self._control
            if client is None or control is None or room.generation != self._generation:
                return
            try:
                await client.destroy_room(control, room.room, secret=self.janus.secrets.room_secret)
            except JanusError as exc:
                log.warning("room not destroyed", meeting=meeting_id, reason=exc.reason)
            for phone in room.phones.values():
                if phone.handle is not None and self._live(phone):
                    with contextlib.suppress(JanusError):
                        await client.detach(phone.handle)

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

    def _live(self, phone: _Phone) -> bool:
        return phone.generation == self._generation

    async def _ensure_room(self, client: AudioBridgeClient, room: _Room) -> None:
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
            )
        except JanusError as exc:
            # Still there after a lost session (Janus itself went on): its participants left
            # with the session's handles, the room stayed.
            if exc.code != ROOM_EXISTS:
                raise
        room.generation = self._generation

    async def _join(self, client: AudioBridgeClient, room: _Room, phone: _Phone) -> None:
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

    async def _leave(self, client: AudioBridgeClient, phone: _Phone) -> None:
        if phone.handle is None or not self._live(phone):
            return
        # Detaching alone would remove the participant too; leave first so that it is out of
        # the mix before we answer.
        with contextlib.suppress(JanusError):
            await client.leave(phone.handle)
        with contextlib.suppress(JanusError):
            await client.detach(phone.handle)
        phone.handle = None

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
            try:
                await client.connect()
                control = await client.attach()
            except JanusError as exc:
                log.warning("janus session not opened", reason=exc.reason, why=why)
                await client.close()
                return
            self._generation += 1
            self._client, self._control = client, control
            joined = 0
            for room in list(self._rooms.values()):
                async with room.lock:
                    if room.ended:
                        continue
                    try:
                        await self._ensure_room(client, room)
                    except JanusError as exc:
                        log.warning(
                            "room not recreated", meeting=room.meeting_id, reason=exc.reason
                        )
                        continue
                    for phone in room.phones.values():
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
