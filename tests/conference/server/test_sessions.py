"""Client sessions (docs/conference-api.md, Sessions): the lease rule by hand, then the real server
with the bridge's own client classes: a client process whose socket is gone for the timeout loses
its attendees, one that comes back in time keeps them, and nobody else's attendees are touched."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import socketio  # type: ignore[import-untyped]

from bridge.conference.client.client import SpacesClient
from bridge.conference.client.events import AttendeeLeft, Connected, SpacesEvent
from bridge.conference.client.realtime import SpacesSubscription
from bridge.conference.client.session import process_session
from bridge.conference.server.app import RunningServer, start_server
from bridge.conference.server.errors import BadRequest
from bridge.conference.server.http import SESSIONS
from bridge.conference.server.model import Caller
from bridge.conference.server.sessions import Held, Leases, session_id
from bridge.conference.wire import SESSION_HEADER, Role
from tests.conference.server.test_http import BRIDGE, BRIDGE2, CONFIG, MOD

BRIDGE_CALLER = Caller("bridge", Role.BRIDGE)
T = 10.0
A = ("bridge", "node-a")
B = ("bridge", "node-b")


def held(attendee_id: str, meeting_id: str = "m1") -> Held:
    return Held(BRIDGE_CALLER, "demo", meeting_id, "phone", attendee_id)


def gone(leases: Leases, now: float) -> list[str]:
    return [h.attendee_id for e in leases.expire(now) for h in e.attendees]


# ------------------------------------------------------------------------- the rule, by hand


def test_a_session_with_a_socket_holds_its_attendees_until_the_last_socket_is_gone_that_long() -> (
    None
):
    leases = Leases(T)
    leases.connected(A, "s1")
    leases.connected(A, "s2")
    leases.joined(A, held("a1"), now=0)
    assert leases.next_deadline() is None
    leases.disconnected("s1", now=5)
    assert leases.next_deadline() is None  # another socket of the session is still there
    leases.disconnected("s2", now=20)
    assert leases.next_deadline() == 30
    assert gone(leases, 29.9) == []
    assert gone(leases, 30) == ["a1"]
    assert len(leases) == 0 and leases.next_deadline() is None


def test_a_socket_back_in_time_stops_the_lease() -> None:
    leases = Leases(T)
    leases.connected(A, "s1")
    leases.joined(A, held("a1"), now=0)
    leases.disconnected("s1", now=1)
    leases.connected(A, "s2")  # a reconnection: a new socket id, the same session
    assert leases.next_deadline() is None
    assert gone(leases, 100) == []
    assert leases.held(A) == ["a1"]


def test_a_join_without_a_socket_starts_the_lease_and_later_joins_do_not_extend_it() -> None:
    leases = Leases(T)
    leases.joined(A, held("a1"), now=0)
    leases.joined(A, held("a2"), now=8)
    assert leases.next_deadline() == 10
    assert gone(leases, 10) == ["a1", "a2"]


def test_sessions_run_out_each_on_its_own() -> None:
    leases = Leases(T)
    leases.connected(A, "sa")
    leases.connected(B, "sb")
    leases.joined(A, held("a1"), now=0)
    leases.joined(B, held("b1"), now=0)
    leases.disconnected("sa", now=1)
    assert gone(leases, 11) == ["a1"]
    assert leases.held(B) == ["b1"]


def test_a_session_is_its_tokens_alone() -> None:
    leases = Leases(T)
    leases.joined(A, held("a1"), now=0)
    # Another token that learnt the id cannot keep the session alive.
    leases.connected(("console", A[1]), "s1")
    assert gone(leases, 10) == ["a1"]


def test_attendees_that_left_or_whose_meeting_ended_are_forgotten() -> None:
    leases = Leases(T)
    leases.connected(A, "s1")
    leases.joined(A, held("a1"), now=0)
    leases.joined(A, held("a2", "m2"), now=0)
    leases.joined(A, held("a3", "m2"), now=0)
    leases.left("a1")
    leases.left("unknown")
    leases.meeting_ended("m2")
    assert leases.held(A) == []
    leases.disconnected("s1", now=1)
    assert leases.next_deadline() is None  # nothing held: nothing to wait for
    assert len(leases) == 0


def test_unknown_sockets_and_bad_timeouts() -> None:
    leases = Leases(T)
    leases.disconnected("never-seen", now=0)
    assert len(leases) == 0
    with pytest.raises(ValueError, match="positive"):
        Leases(0)


@pytest.mark.parametrize("value", [None, ""])
def test_no_session_id_is_none(value: object) -> None:
    assert session_id(value) is None


@pytest.mark.parametrize("value", ["x" * 65, "a b", "a/b", 42, ["a"]])
def test_a_malformed_session_id_is_a_bad_request(value: object) -> None:
    with pytest.raises(BadRequest):
        session_id(value)


def test_a_process_has_one_session_id() -> None:
    first = process_session()
    assert first == process_session()
    assert len(first) == 32 and int(first, 16) >= 0


# ------------------------------------------------------------------------- the real server

TIMEOUT = 0.4
PHONE: dict[str, Any] = {"attendee_type": "phone", "version": "1.1", "guest": False}
SERVER = dataclasses.replace(CONFIG, session_timeout_seconds=TIMEOUT)


@dataclasses.dataclass
class Node:
    """One bridge node's view: its HTTP client and subscription, with one session id."""

    client: SpacesClient
    subscription: SpacesSubscription
    events: list[SpacesEvent]

    async def wait_connected(self, count: int = 1) -> None:
        await until(lambda: sum(isinstance(e, Connected) for e in self.events) >= count)


@contextlib.asynccontextmanager
async def node(server: RunningServer, session: str, token: str = BRIDGE) -> AsyncIterator[Node]:
    events: list[SpacesEvent] = []
    async with (
        SpacesClient(server.url, token, session=session) as client,
        SpacesSubscription(
            server.url, token, on_event=events.append, reconnect_delay=0.02, session=session
        ) as subscription,
    ):
        found = Node(client, subscription, events)
        await found.wait_connected()
        yield found


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def active_meeting(http: aiohttp.ClientSession, server: RunningServer) -> str:
    url = server.url + "/api/spaces/demo/activemeeting"
    async with http.get(url, headers={"Authorization": f"Bearer {MOD}"}) as answer:
        meeting: str = (await answer.json())["meetingId"]
    return meeting


async def post_join(
    http: aiohttp.ClientSession, server: RunningServer, meeting: str, headers: dict[str, str]
) -> tuple[int, Any]:
    url = server.url + f"/api/spaces/demo/meetings/{meeting}/attendees"
    join = {"attendeeType": "phone", "displayName": "Someone"}
    async with http.post(url, json=join, headers=headers) as answer:
        return answer.status, await answer.json()


async def plain_join(
    http: aiohttp.ClientSession, server: RunningServer, meeting: str, token: str, kind: str
) -> str:
    """A join without ``Spaces-Session``, as a browser or another API user makes it."""
    url = server.url + f"/api/spaces/demo/meetings/{meeting}/attendees"
    join = {"attendeeType": kind, "displayName": "Someone"}
    async with http.post(url, json=join, headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 201
        attendee: str = (await answer.json())["attendeeId"]
    return attendee


def roster_ids(server: RunningServer) -> list[str]:
    return [a.id for a in server.conference.attendees("demo")]


def run(body: Callable[[RunningServer], Awaitable[None]]) -> None:
    async def main() -> None:
        server = await start_server(SERVER)
        try:
            await body(server)
        finally:
            await server.close()

    asyncio.run(main())


def test_a_gone_node_s_attendees_leave_after_the_timeout_and_nobody_else_s() -> None:
    async def body(server: RunningServer) -> None:
        async with aiohttp.ClientSession() as http, node(server, "watcher", BRIDGE2) as watcher:
            meeting = await active_meeting(http, server)
            await watcher.subscription.subscribe("demo")
            console = await plain_join(http, server, meeting, MOD, "web")
            async with node(server, "node-a") as a, node(server, "node-b") as b:
                phone_a = await a.client.join("demo", meeting, display_name="Phone A", **PHONE)
                phone_b = await b.client.join("demo", meeting, display_name="Phone B", **PHONE)
                await a.subscription.close()  # node A dies: its socket closes
                closed = time.monotonic()
                await asyncio.sleep(TIMEOUT / 2)
                assert phone_a.attendee_id in roster_ids(server)  # not before the timeout
                await until(lambda: phone_a.attendee_id not in roster_ids(server))
                elapsed = time.monotonic() - closed
                assert TIMEOUT <= elapsed < TIMEOUT + 1.0, elapsed
                await until(lambda: any(isinstance(e, AttendeeLeft) for e in watcher.events))
                left = [e for e in watcher.events if isinstance(e, AttendeeLeft)]
                assert [e.entry.attendee_id for e in left] == [phone_a.attendee_id]
                assert server.runner.app[SESSIONS].expired_attendees == 1
                # Node B, alive, keeps its phone; the console's attendee has no session.
                await asyncio.sleep(TIMEOUT * 2)
                assert roster_ids(server) == [console, phone_b.attendee_id]

    run(body)


def test_attendees_joined_without_a_session_are_never_touched() -> None:
    async def body(server: RunningServer) -> None:
        async with aiohttp.ClientSession() as http:
            meeting = await active_meeting(http, server)
            plain = await plain_join(http, server, meeting, BRIDGE, "phone")
            status, answer = await post_join(
                http, server, meeting, {"Authorization": f"Bearer {BRIDGE}", SESSION_HEADER: "a b"}
            )
            assert (status, answer["error"]) == (400, "bad_field")
            await asyncio.sleep(TIMEOUT * 3)
            assert roster_ids(server) == [plain]

    run(body)


def test_a_join_whose_session_never_connects_leaves_after_the_timeout() -> None:
    async def body(server: RunningServer) -> None:
        async with SpacesClient(server.url, BRIDGE, session="http-only") as client:
            meeting = (await client.active_meeting("demo")).meeting_id
            joined = await client.join("demo", meeting, display_name="Orphan", **PHONE)
            assert roster_ids(server) == [joined.attendee_id]
            await until(lambda: roster_ids(server) == [])

    run(body)


def test_a_node_that_reconnects_in_time_keeps_its_attendees() -> None:
    async def body(server: RunningServer) -> None:
        async with node(server, "node-a") as a:
            meeting = (await a.client.active_meeting("demo")).meeting_id
            await a.subscription.subscribe("demo")
            phone = await a.client.join("demo", meeting, display_name="Phone A", **PHONE)
            # Cut the socket as a network blip would: the server closes it, the client comes
            # back by itself (a new socket id, the same session).
            for blip in range(2, 5):
                for socket in list(server.realtime._sio.eio.sockets.values()):
                    await socket.close(wait=False)
                await a.wait_connected(blip)
            await asyncio.sleep(TIMEOUT * 2)
            assert roster_ids(server) == [phone.attendee_id]
            # A phone that hangs up is forgotten with its leave event: memory follows what lives.
            leases = server.runner.app[SESSIONS].leases
            assert leases.held(("bridge", "node-a")) == [phone.attendee_id]
            await a.client.leave("demo", meeting, "phone", phone.attendee_id)
            await until(lambda: leases.held(("bridge", "node-a")) == [])

    run(body)


def test_a_malformed_session_on_the_socket_is_refused() -> None:
    async def body(server: RunningServer) -> None:
        client = socketio.AsyncClient(reconnection=False)
        auth: dict[str, Any] = {"token": BRIDGE, "session": "no spaces allowed"}
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(server.url, auth=auth, namespaces=["/chat"], wait_timeout=2)
        await client.disconnect()

    run(body)
