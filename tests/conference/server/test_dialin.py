"""Dial-in IDs and host PINs (docs/conference-api.md, "Dial-in"): the rules alone, and the
bridge's client against the real server both over HTTP and in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from bridge.conference.client.client import SpacesClient
from bridge.conference.client.errors import Forbidden, NotFound
from bridge.conference.server.app import start_server
from bridge.conference.server.config import ServerConfig, SpaceConfig, TokenConfig
from bridge.conference.server.dialin import DialIn
from bridge.conference.server.model import Caller
from bridge.conference.wire import Role
from tests.conference.server.test_http import BRIDGE, MEMBER, MOD

SPACES = (
    SpaceConfig("demo", "Demo", dial_in_id="1000"),
    SpaceConfig("board", "Board", dial_in_id="2000", host_pin="424242"),
    SpaceConfig("hidden", "Hidden"),
)
CONFIG = ServerConfig(
    host="127.0.0.1",
    port=0,
    tokens=(
        TokenConfig(MOD, Role.MODERATOR, "console"),
        TokenConfig(MEMBER, Role.MEMBER, "alice"),
        TokenConfig(BRIDGE, Role.BRIDGE, "bridge"),
    ),
    spaces=SPACES,
)
BRIDGE_CALLER = Caller("bridge", Role.BRIDGE)


def test_an_id_names_its_space_and_says_whether_a_pin_is_asked() -> None:
    dial_in = DialIn(SPACES)
    assert dial_in.resolve(BRIDGE_CALLER, "1000", None) == {
        "spaceId": "demo",
        "hostPin": False,
        "host": False,
    }
    assert dial_in.resolve(BRIDGE_CALLER, "2000", None)["hostPin"] is True
    assert dial_in.resolve(BRIDGE_CALLER, "2000", "424242")["host"] is True
    assert dial_in.resolve(BRIDGE_CALLER, "2000", "424243")["host"] is False
    # A PIN given for a space without one makes nobody a host.
    assert dial_in.resolve(BRIDGE_CALLER, "1000", "424242")["host"] is False
    assert dial_in.status(BRIDGE_CALLER) == {"available": True}
    assert DialIn([SpaceConfig("x", "X")]).status(BRIDGE_CALLER) == {"available": False}


def test_an_unknown_id_is_404_without_its_digits_and_others_may_not_ask() -> None:
    dial_in = DialIn(SPACES)
    with pytest.raises(Exception, match="dialin_not_found") as caught:
        dial_in.resolve(BRIDGE_CALLER, "3141", None)
    assert "3141" not in str(caught.value)
    for role in (Role.MEMBER, Role.GUEST):
        with pytest.raises(Exception, match="403"):
            dial_in.resolve(Caller("someone", role), "1000", None)


def test_the_pin_never_shows_in_repr() -> None:
    assert "424242" not in repr(SPACES[1])
    assert "424242" not in repr(CONFIG)


def _both_ways(body: Callable[[SpacesClient], Awaitable[None]]) -> None:
    async def main() -> None:
        server = await start_server(CONFIG)
        try:
            for local in (None, server.local_api()):
                async with SpacesClient(server.url, BRIDGE, local=local) as client:
                    await body(client)
        finally:
            await server.close()

    asyncio.run(main())


def test_the_client_resolves_ids_over_http_and_in_process() -> None:
    async def body(client: SpacesClient) -> None:
        assert await client.dial_in_available()
        found = await client.dial_in("2000")
        assert (found.space_id, found.host_pin, found.host) == ("board", True, False)
        assert (await client.dial_in("2000", "424242")).host
        with pytest.raises(NotFound) as caught:
            await client.dial_in("9")
        assert caught.value.code == "dialin_not_found"

    _both_ways(body)


def test_a_member_token_may_not_resolve() -> None:
    async def main() -> None:
        server = await start_server(CONFIG)
        try:
            async with SpacesClient(server.url, MEMBER) as client:
                with pytest.raises(Forbidden):
                    await client.dial_in("1000")
        finally:
            await server.close()

    asyncio.run(main())


def test_a_server_without_dial_in_ids_says_so() -> None:
    async def main() -> None:
        config = ServerConfig(
            host="127.0.0.1", port=0, tokens=CONFIG.tokens, spaces=(SpaceConfig("x", "X"),)
        )
        server = await start_server(config)
        try:
            async with SpacesClient(server.url, BRIDGE) as client:
                assert not await client.dial_in_available()
        finally:
            await server.close()

    asyncio.run(main())


def test_a_server_without_the_dial_in_route_leaves_the_menu_unavailable() -> None:
    async def main() -> None:
        app = web.Application()  # no routes at all: every path answers 404
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with SpacesClient(f"http://127.0.0.1:{port}", BRIDGE) as client:
                assert not await client.dial_in_available()
        finally:
            await runner.cleanup()

    asyncio.run(main())
