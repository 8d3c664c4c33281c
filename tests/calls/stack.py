"""The whole call stack in one process: the real conference server on a free loopback port, the real
client and subscription, the call layer on a real SIP endpoint, and a scripted phone on another
endpoint. SIP travels over an in-memory wire (the transports have their own tests); everything else
is the product's own code, so that the convergence tests exercise the real event interleavings."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from bridge.calls.conference import ConferenceCalls
from bridge.calls.settings import CallSettings
from bridge.conference.client.client import SpacesClient
from bridge.conference.client.realtime import SpacesSubscription
from bridge.conference.server.app import RunningServer, start_server
from bridge.conference.server.config import ServerConfig, SpaceConfig, TokenConfig
from bridge.conference.server.model import Settings
from bridge.conference.wire import Role
from bridge.media.anchor import MediaAnchor
from bridge.sip import offer_answer, sdp
from bridge.sip.address import Address, Transport
from bridge.sip.dialog import DialogId
from bridge.sip.endpoint import Endpoint, EndpointConfig
from bridge.sip.events import (
    Event,
    GlareRetryDue,
    RequestReceived,
    ResponseReceived,
)
from bridge.sip.uri import parse_name_addr, parse_uri

BRIDGE_ADDR = Address(Transport.UDP, "127.0.0.1", 5060)
PHONE_ADDR = Address(Transport.UDP, "127.0.0.1", 5070)
MODERATOR = "moderator-token-0123456789"
BRIDGE = "bridge-token-0123456789abc"

CONFIG = ServerConfig(
    host="127.0.0.1",
    port=0,
    tokens=(
        TokenConfig(MODERATOR, Role.MODERATOR, "console"),
        TokenConfig(BRIDGE, Role.BRIDGE, "bridge"),
    ),
    spaces=(SpaceConfig("demo", "Demo", Settings()),),
    source="<tests>",
)


def _endpoint(port: int, prefix: str, random: Callable[[], float]) -> Endpoint:
    counter = itertools.count(1)
    return Endpoint(
        EndpointConfig(local=dict.fromkeys(Transport, ("127.0.0.1", port))),
        token=lambda: f"{prefix}{next(counter)}",
        random=random,
    )


def phone_sdp(direction: sdp.Direction, version: int) -> bytes:
    return (
        f"v=0\r\no=phone 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction.value}\r\n"
    ).encode()


@dataclass
class Phone:
    """A phone that answers re-offers by RFC 3264 and re-offers its own wishes (mute, hold)."""

    endpoint: Endpoint
    clock: Callable[[], float]
    dialog: DialogId | None = None
    told: sdp.Direction | None = None
    """The bridge's audio direction in its last SDP: ``sendrecv`` = the phone may send."""
    sends: bool = True
    held: bool = False
    version: int = 1
    again: bool = False
    answers: list[int] = field(default_factory=list)

    @property
    def local(self) -> sdp.Direction:
        if self.held:
            return sdp.Direction.SENDONLY
        return sdp.Direction.SENDRECV if self.sends else sdp.Direction.RECVONLY

    def call(self) -> None:
        self.endpoint.invite(
            parse_uri("sip:demo@127.0.0.1:5060"),
            peer=BRIDGE_ADDR,
            from_=parse_name_addr('"Phone" <sip:phone@127.0.0.1:5070>'),
            to=parse_name_addr("<sip:demo@127.0.0.1:5060>"),
            now=self.clock(),
            body=phone_sdp(self.local, self.version),
            content_type="application/sdp",
        )

    def reoffer(self) -> None:
        if self.dialog is None or self.endpoint.dialog(self.dialog) is None:
            return
        if self.endpoint.invite_pending(self.dialog):
            self.again = True  # after the exchange in progress
            return
        self.version += 1
        self.endpoint.send_in_dialog(
            self.dialog,
            "INVITE",
            now=self.clock(),
            body=phone_sdp(self.local, self.version),
            content_type="application/sdp",
        )

    def on_event(self, event: Event) -> None:
        match event:
            case RequestReceived(request_id=rid, request=request, dialog=dialog):
                body = b""
                if request.method == "INVITE" and request.body:
                    offer = sdp.parse_sdp(request.body)
                    assert offer.audio is not None
                    self.told = offer.audio.direction
                    self.version += 1
                    answer = offer_answer.answer_direction(offer.audio.direction, self.local)
                    body = phone_sdp(answer, self.version)
                self.endpoint.respond(
                    rid,
                    200,
                    now=self.clock(),
                    body=body,
                    content_type="application/sdp" if body else None,
                )
                self.dialog = self.dialog or dialog
            case ResponseReceived(response=response, dialog=dialog):
                if response.cseq.method != "INVITE" or response.status < 200:
                    return
                self.answers.append(response.status)
                if 200 <= response.status < 300:
                    self.dialog = self.dialog or dialog
                    answered = sdp.parse_sdp(response.body)
                    assert answered.audio is not None
                    self.told = answered.audio.direction
                if self.again and response.status != 491:
                    self.again = False
                    self.reoffer()
            case GlareRetryDue():
                self.again = False
                self.reoffer()
            case _:
                pass


@dataclass
class Wire:
    """Carries datagrams between the two endpoints and fires their timers; never re-entered."""

    bridge: Endpoint
    phone: Endpoint
    on_bridge: Callable[[Event], None]
    on_phone: Callable[[Event], None]
    clock: Callable[[], float]
    busy: bool = False
    again: bool = False

    def flush(self) -> None:
        if self.busy:
            self.again = True
            return
        self.busy = True
        try:
            self.again = True
            while self.again:
                self.again = False
                now = self.clock()
                for ep, src, peer in (
                    (self.bridge, BRIDGE_ADDR, self.phone),
                    (self.phone, PHONE_ADDR, self.bridge),
                ):
                    timer = ep.get_timer()
                    if timer is not None and timer <= now:
                        ep.handle_timer(now)
                    for data, _dst in ep.datagrams_to_send(now):
                        self.again = True
                        peer.receive(data, src, now)
                for ep, handler in ((self.bridge, self.on_bridge), (self.phone, self.on_phone)):
                    while (event := ep.next_event()) is not None:
                        self.again = True
                        handler(event)
        finally:
            self.busy = False


@dataclass
class Stack:
    server: RunningServer
    client: SpacesClient
    moderator: SpacesClient
    subscription: SpacesSubscription
    calls: ConferenceCalls
    phone: Phone
    wire: Wire
    media: MediaAnchor
    tasks: set[asyncio.Task[object]]
    failures: list[BaseException]
    ticker: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, media_port: int) -> Stack:
        loop = asyncio.get_running_loop()
        server = await start_server(CONFIG)
        client = SpacesClient(server.url, BRIDGE)
        moderator = SpacesClient(server.url, MODERATOR)
        media = MediaAnchor("127.0.0.1", media_port, media_port + 8)
        await media.start()
        tasks: set[asyncio.Task[object]] = set()
        failures: list[BaseException] = []

        def spawn(work: Awaitable[object]) -> None:
            async def guarded() -> object:
                try:
                    return await work
                except Exception as exc:
                    failures.append(exc)
                    raise

            task = loop.create_task(guarded())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        bridge_ep = _endpoint(5060, "b", random=lambda: 0.5)
        phone_ep = _endpoint(5070, "p", random=lambda: 0.1)
        holder: dict[str, Wire] = {}
        subscription_box: dict[str, SpacesSubscription] = {}

        async def subscribe(space: str) -> None:
            sub = subscription_box["sub"]
            if space not in sub.spaces:
                await sub.subscribe(space)

        calls = ConferenceCalls(
            bridge_ep,
            media,
            client,
            CallSettings(),
            subscribe=subscribe,
            clock=loop.time,
            flush=lambda: holder["wire"].flush(),  # noqa: PLW0108 (the wire comes later)
            spawn=spawn,
            later=loop.call_later,
        )
        subscription = SpacesSubscription(server.url, BRIDGE, on_event=calls.on_spaces_event)
        subscription_box["sub"] = subscription
        await subscription.start()
        phone = Phone(phone_ep, loop.time)
        wire = Wire(bridge_ep, phone_ep, calls.on_event, phone.on_event, loop.time)
        holder["wire"] = wire
        stack = cls(
            server, client, moderator, subscription, calls, phone, wire, media, tasks, failures
        )
        stack.ticker = loop.create_task(stack._tick())
        return stack

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.wire.flush()

    async def close(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
        for task in list(self.tasks):
            task.cancel()
        await self.subscription.close()
        await self.client.close()
        await self.moderator.close()
        await self.server.close()
        self.media.close()


async def restart(stack: Stack) -> SpacesClient:
    """Stop the server and start it again on the same port with the same state; returns a fresh
    moderator client (the old one's keep-alive connection died with the server)."""
    port = int(stack.server.url.rsplit(":", 1)[1])
    await stack.server.close()
    stack.server = await start_server(replace(CONFIG, port=port), stack.server.conference)
    await stack.moderator.close()
    stack.moderator = SpacesClient(stack.server.url, MODERATOR)
    return stack.moderator
