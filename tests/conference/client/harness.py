"""The real conference server (``bridge.conference.server``) started in-process on loopback, for
client tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from bridge.conference.client.client import SpacesClient
from bridge.conference.client.events import SpacesEvent
from bridge.conference.server.app import RunningServer, new_conference, start_server
from bridge.conference.server.config import ServerConfig, SpaceConfig, TokenConfig
from bridge.conference.server.model import Settings
from bridge.conference.wire import GuestPolicy, Role

T = TypeVar("T")
E = TypeVar("E")

MODERATOR = "moderator-token-0123456789"
BRIDGE = "bridge-token-0123456789abc"
OTHER_BRIDGE = "other-bridge-token-0123456"
MEMBER = "member-token-0123456789abc"

CONFIG = ServerConfig(
    host="127.0.0.1",
    port=0,
    tokens=(
        TokenConfig(MODERATOR, Role.MODERATOR, "console"),
        TokenConfig(BRIDGE, Role.BRIDGE, "bridge"),
        TokenConfig(OTHER_BRIDGE, Role.BRIDGE, "bridge2"),
        TokenConfig(MEMBER, Role.MEMBER, "alice"),
    ),
    spaces=(
        SpaceConfig("demo", "Demo"),
        SpaceConfig("lobby", "Lobby", Settings(guest_policy=GuestPolicy.ASK_MODERATOR)),
        SpaceConfig("closed", "Closed", Settings(guest_policy=GuestPolicy.ALWAYS_DENY)),
        SpaceConfig("entry", "Entry", Settings(mute_on_entry=True)),
        SpaceConfig("idle", "Idle", Settings(auto_start=False)),
    ),
    source="<tests>",
)


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    """Run one async scenario in a fresh loop, bounded so that a hang fails instead of blocking."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await scenario()

    return asyncio.run(bounded())


async def start(port: int = 0) -> RunningServer:
    """A new conference server; the caller closes it."""
    return await start_server(replace(CONFIG, port=port), new_conference(CONFIG))


@contextlib.asynccontextmanager
async def conference_server(port: int = 0) -> AsyncIterator[RunningServer]:
    server = await start(port)
    try:
        yield server
    finally:
        await server.close()


async def restart(server: RunningServer) -> RunningServer:
    """Stop ``server`` and start a new one on the same port with the same conference state."""
    port = int(server.url.rsplit(":", 1)[1])
    await server.close()
    return await start_server(replace(server.config, port=port), server.conference)


@contextlib.asynccontextmanager
async def client(url: str, token: str, **options: object) -> AsyncIterator[SpacesClient]:
    async with SpacesClient(url, token, **options) as c:  # type: ignore[arg-type]
        yield c


class EventLog:
    """Collects a subscription's events; ``expect`` waits for the next one matching a predicate."""

    def __init__(self) -> None:
        self.events: list[SpacesEvent] = []
        self._seen = 0
        self._changed = asyncio.Event()

    def __call__(self, event: SpacesEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def expect(
        self, predicate: Callable[[SpacesEvent], bool], timeout: float = 5.0
    ) -> SpacesEvent:
        """The first event after the last one returned that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            while self._seen < len(self.events):
                event = self.events[self._seen]
                self._seen += 1
                if predicate(event):
                    return event
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event; got {self.events[-10:]!r}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]
