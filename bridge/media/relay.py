"""The per-call RTP relay's sockets: a thin asyncio adapter around :class:`~.session.CallMedia`.

Each call takes a block of :data:`~bridge.config.media.PORTS_PER_CALL` ports from the range (an
even port for the phone's RTP, the next for its RTCP, then the meeting leg's RTP; the fourth stays
free for the meeting leg's RTCP, which the mixer does not send). Freed blocks go to the back of the
queue, so that late packets of an ended call do not reach the next call on the same ports. When no
block is free, :meth:`Relay.open` returns None and the call layer answers 503 (docs/media.md).

Everything per packet happens in :class:`CallMedia`; this module only moves datagrams, keeps one
20 ms timer for the calls that play a prompt and one 1 s timer for keepalives and RTCP reports,
and hands pressed keys to the call layer.
"""

from __future__ import annotations

import asyncio
import collections
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, cast

import structlog

from .prompts import Codec, Prompt, Prompts
from .session import Address, CallMedia, Counters, Ids

log = structlog.get_logger("bridge.media")

PORTS_PER_CALL: Final = 4
TICK: Final = 0.02
"""The prompt clock: one 20 ms frame per call per tick."""
HOUSEKEEPING: Final = 1.0
"""Each call's keepalive and RTCP report are looked at this often."""
HOUSEKEEPING_SLICES: Final = 50
"""The calls are looked at in this many slices spread over the second (one every 20 ms), not all at
once: 500 calls' reports in one callback stalled the loop's packets for 2-3 ms (bench/media.py)."""
LOBBY_PAUSE: Final = 3.0
"""Seconds of silence between two plays of the lobby prompt."""


class _Receiver(asyncio.DatagramProtocol):
    """One socket of a call: hands each datagram to its leg's handler."""

    __slots__ = ("_handler", "transport")

    def __init__(self, handler: Callable[[bytes, Address], None]) -> None:
        self._handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport: neither asyncio's selector transport nor uvloop's
        # subclasses DatagramTransport, but both have its sendto and close.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._handler(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that stopped listening, reported on the next send:
        # nothing to do, the call's signalling ends it.
        pass


class MediaLeg:
    """The relay's side of one call: its ports, its sockets and its :class:`CallMedia` once the
    phone's SDP is known."""

    def __init__(self, relay: Relay, base: int) -> None:
        self._relay = relay
        self.port = base
        """The phone leg's RTP port (RTCP is the next one); the call layer writes it in our SDP."""
        self.meeting_port = base + 2
        """The meeting leg's RTP port, offered to the conference server at join."""
        self.media: CallMedia | None = None
        self.on_key: Callable[[str], None] | None = None
        """Called with each key the phone presses (RFC 4733)."""
        self.on_talking: Callable[[bool], None] | None = None
        """Called when the phone starts or stops speaking into the meeting."""
        self._rtp: _Receiver | None = None
        self._rtcp: _Receiver | None = None
        self._meeting: _Receiver | None = None
        self._meeting_socket: socket.socket | None = None
        self.closed = False
        self.warned_no_meeting = False

    async def _bind(self, host: str) -> bool:
        loop = asyncio.get_running_loop()
        sockets = bind_udp(host, (self.port, self.port + 1, self.meeting_port))
        if sockets is None:
            return False
        handlers = (self._from_phone, self._from_phone_rtcp, self._from_meeting)
        receivers = []
        for sock, handler in zip(sockets, handlers, strict=True):
            receiver = _Receiver(handler)
            await loop.create_datagram_endpoint(lambda r=receiver: r, sock=sock)  # type: ignore[misc]
            receivers.append(receiver)
        self._rtp, self._rtcp, self._meeting = receivers
        self._meeting_socket = sockets[2]
        return True

    # -- the call layer ---------------------------------------------------------------------------
    def configure(  # noqa: PLR0917  (the fields of one SDP negotiation)
        self,
        codec: str,
        payload_type: int,
        event_payload_type: int | None,
        phone: Address | None,
        phone_rtcp: Address | None,
        cname: str,
    ) -> None:
        """The phone leg as an offer/answer settled it (first answer, or a re-INVITE): its codec
        (``PCMU``, ``PCMA``), payload types, and RTP and RTCP addresses (None: it gave none)."""
        if phone is not None and (":" in phone[0]) != (":" in self._relay.host):
            # Our sockets cannot reach the other address family (uvloop raises on such a send, in
            # the timers every call shares): a dual-stack phone is latched where it sends from.
            phone = phone_rtcp = None
        if self.media is None:
            self.media = CallMedia(
                codec=codec,
                payload_type=payload_type,
                event_payload_type=event_payload_type,
                phone=phone,
                phone_rtcp=phone_rtcp,
                ids=self._relay.new_ids(),
                cname=cname,
            )
        else:
            self.media.renegotiate(
                codec=codec,
                payload_type=payload_type,
                event_payload_type=event_payload_type,
                phone=phone,
                phone_rtcp=phone_rtcp,
            )

    def connect_meeting(self, host: str, port: int, codec: str, payload_type: int) -> None:
        """The meeting leg's endpoint, from the server's join answer. The socket is connected to
        it, so that the kernel drops datagrams from anyone else."""
        media = self.media
        if media is None or self._meeting_socket is None:
            raise RuntimeError("connect_meeting before configure")
        self._meeting_socket.connect((host, port))
        media.connect_meeting((host, port), codec, payload_type)

    def set_gates(self, *, send: bool, hear: bool) -> None:
        """Whether the phone's audio may reach the meeting, and the meeting's the phone."""
        media = self.media
        if media is None:
            return
        if media.send_open and not send:
            self._to_meeting(media.flush())  # the end of the last word, then nothing
        media.send_open, media.hear_open = send, hear

    def play(self, prompt: Prompt, *, repeat: bool = False) -> float:
        """Play ``prompt`` to the phone (the lobby prompt repeats with pauses); its duration in
        seconds, 0 when prompts are off or the call is not set up."""
        media, prompts = self.media, self._relay.prompts
        if media is None or prompts is None:
            return 0.0
        codec: Codec = "PCMU" if media.codec == "PCMU" else "PCMA"
        frames = prompts.frames(prompt, codec)
        media.play(frames, repeat_after=LOBBY_PAUSE if repeat else None)
        self._relay.prompting(self)
        return len(frames) * TICK

    def play_all(self, prompts: Sequence[Prompt]) -> float:
        """Play ``prompts`` one after the other, as one (a menu's "not found" then its question);
        their duration in seconds, 0 when prompts are off or the call is not set up."""
        media, recorded = self.media, self._relay.prompts
        if media is None or recorded is None or not prompts:
            return 0.0
        codec: Codec = "PCMU" if media.codec == "PCMU" else "PCMA"
        frames = tuple(frame for prompt in prompts for frame in recorded.frames(prompt, codec))
        media.play(frames)
        self._relay.prompting(self)
        return len(frames) * TICK

    def stop_prompt(self) -> None:
        if self.media is not None:
            self.media.stop()

    def close(self) -> Counters | None:
        """Release the ports; the call's counters for its summary line."""
        if self.closed:
            return None
        self.closed = True
        for receiver in (self._rtp, self._rtcp, self._meeting):
            if receiver is not None and receiver.transport is not None:
                receiver.transport.close()
        # No cycles left behind (the call and its leg, each receiver and its leg): reference
        # counting frees them now, not a collector pass minutes later.
        self._rtp = self._rtcp = self._meeting = None
        self._meeting_socket = None
        self.on_key = self.on_talking = None
        return self._relay.release(self)

    # -- datagrams --------------------------------------------------------------------------------
    def _from_phone(self, data: bytes, addr: Address) -> None:
        media = self.media
        relay = self._relay
        started = time.perf_counter()
        if media is None:
            relay.unconfigured += 1
            return
        out = media.from_phone(data, addr[:2], relay.loop_time())
        if out:
            self._to_meeting(out)
        if media.keys:
            keys, media.keys = media.keys, []
            if self.on_key is not None:
                for key in keys:
                    self.on_key(key)
        if media.talking_changed:
            media.talking_changed = False
            if self.on_talking is not None:
                self.on_talking(media.talking)
        relay.busy += time.perf_counter() - started

    def _from_phone_rtcp(self, data: bytes, addr: Address) -> None:
        if self.media is not None:
            self.media.from_phone_rtcp(data, addr[:2])

    def _from_meeting(self, data: bytes, addr: Address) -> None:
        media = self.media
        relay = self._relay
        started = time.perf_counter()
        if media is None:
            return
        out = media.from_meeting(data, relay.loop_time())
        if out:
            self._to_phone(out)
        relay.busy += time.perf_counter() - started

    def _to_meeting(self, packets: list[bytes]) -> None:
        media, receiver = self.media, self._meeting
        if media is None or media.meeting is None or receiver is None or receiver.transport is None:
            return
        send = receiver.transport.sendto
        for packet in packets:
            send(packet, media.meeting)

    def _to_phone(self, packets: list[bytes]) -> None:
        media, receiver = self.media, self._rtp
        target = media.phone_target if media is not None else None
        if target is None or receiver is None or receiver.transport is None:
            return
        send = receiver.transport.sendto
        for packet in packets:
            send(packet, target)

    def tick(self, now: float) -> bool:
        """The prompt clock; False once the prompt is over."""
        media = self.media
        if media is None or self.closed:
            return False
        self._to_phone(media.tick(now))
        return media.prompting

    def housekeeping(self, now: float, wallclock: float) -> None:
        media = self.media
        if media is None or self.closed:
            return
        keepalive, report = media.housekeeping(now, wallclock)
        if media.talking_changed:
            media.talking_changed = False
            if self.on_talking is not None:
                self.on_talking(media.talking)
        if keepalive is not None:
            self._to_meeting([keepalive])
        target = media.rtcp_destination
        transport = self._rtcp.transport if self._rtcp is not None else None
        if report is not None and target is not None and transport is not None:
            transport.sendto(report, target)


class Relay:
    """Port blocks in ``[port_min, port_max]`` on ``host``, one :class:`MediaLeg` per call."""

    def __init__(
        self,
        host: str,
        port_min: int,
        port_max: int,
        *,
        prompts: Prompts | None,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        first = port_min + (port_min & 1)
        self._free: collections.deque[int] = collections.deque(
            range(first, port_max - PORTS_PER_CALL + 2, PORTS_PER_CALL)
        )
        self.capacity = len(self._free)
        self.prompts = prompts
        self._rng = rng or random.SystemRandom()
        self._legs: dict[int, MediaLeg] = {}
        self._prompting: set[MediaLeg] = set()
        self._ticker: asyncio.TimerHandle | None = None
        self._housekeeper: asyncio.TimerHandle | None = None
        self._rounds: list[MediaLeg] = []  # the calls still to look at in this second
        self._per_slice = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.loop_time: Callable[[], float] = time.monotonic
        self.totals = Counters()
        """Counters of the calls that ended; :meth:`counters` adds the live ones."""
        self.unconfigured = 0
        """Datagrams that arrived before the call's SDP was settled (dropped)."""
        self.busy = 0.0
        """Seconds spent handling media datagrams (the relay's share of the loop's CPU)."""
        self.exhausted = 0
        """Calls refused because no port block was free."""

    @property
    def active(self) -> int:
        return len(self._legs)

    async def open(self) -> MediaLeg | None:
        """A leg on a free port block, or None when the range is exhausted."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self.loop_time = self._loop.time
            self._housekeeper = self._loop.call_later(
                HOUSEKEEPING / HOUSEKEEPING_SLICES, self._housekeeping
            )
        for _ in range(len(self._free)):
            base = self._free.popleft()
            leg = MediaLeg(self, base)
            if await leg._bind(self.host):
                self._legs[base] = leg
                return leg
            # Something else holds a port of this block: try it again after the others.
            self._free.append(base)
        self.exhausted += 1
        return None

    def release(self, leg: MediaLeg) -> Counters | None:
        if self._legs.pop(leg.port, None) is None:
            return None
        self._free.append(leg.port)
        self._prompting.discard(leg)
        if leg.media is None:
            return None
        leg.media.counters.lost = leg.media.lost
        self.totals.add(leg.media.counters)
        return leg.media.counters

    def new_ids(self) -> Ids:
        r = self._rng.getrandbits
        return Ids(r(32), r(16), r(32), r(32), r(16), r(32))

    def counters(self) -> Counters:
        """Every call's counters, ended and live."""
        total = Counters()
        total.add(self.totals)
        for leg in self._legs.values():
            if leg.media is not None:
                total.add(leg.media.counters)
        return total

    def legs(self) -> Iterator[MediaLeg]:
        return iter(self._legs.values())

    def prompting(self, leg: MediaLeg) -> None:
        self._prompting.add(leg)
        if self._ticker is None and self._loop is not None:
            self._ticker = self._loop.call_at(self._loop.time(), self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for leg in list(self._prompting):
            if not leg.tick(now):
                self._prompting.discard(leg)
        self._ticker = self._loop.call_at(now + TICK, self._tick) if self._prompting else None

    def _housekeeping(self) -> None:
        """One slice of the calls every 1/50 s, so that each call is looked at once a second."""
        assert self._loop is not None
        now, wallclock = self._loop.time(), time.time()
        if not self._rounds:
            self._rounds = list(self._legs.values())
            self._per_slice = -(-len(self._rounds) // HOUSEKEEPING_SLICES)
        batch, self._rounds = self._rounds[: self._per_slice], self._rounds[self._per_slice :]
        for leg in batch:
            leg.housekeeping(now, wallclock)
        self._housekeeper = self._loop.call_at(
            now + HOUSEKEEPING / HOUSEKEEPING_SLICES, self._housekeeping
        )

    def close(self) -> None:
        for leg in list(self._legs.values()):
            leg.close()
        for handle in (self._ticker, self._housekeeper):
            if handle is not None:
                handle.cancel()
        self._ticker = self._housekeeper = None


def bind_udp(host: str, ports: Iterable[int]) -> list[socket.socket] | None:
    """Non-blocking UDP sockets bound to ``ports`` of ``host``, all or none (None when one of
    them is taken: the caller tries another block)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.bind((host, port))
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        return None
    return sockets
