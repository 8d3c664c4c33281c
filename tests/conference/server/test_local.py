"""The in-process API answers exactly as HTTP does: the same script of calls (successes and every
kind of refusal) against two identical servers, one over HTTP and one through ``LocalApi``, gives
the same statuses, bodies and Socket.IO events, in the same order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bridge.conference.client.errors import NotFound
from bridge.conference.client.events import Connected
from bridge.conference.client.local import LocalSubscription
from bridge.conference.client.realtime import SpacesSubscription
from bridge.conference.server.app import RunningServer, start_server
from bridge.conference.server.state import Conference
from tests.conference.server.test_http import BRIDGE, CONFIG, GUEST, MEMBER, MOD, Listener

M = "/api/spaces/{space}/meetings/{meeting}"
# (method, path, token, body); {meeting} is the active meeting of the space the path names, and
# {a0}, {a1}… the attendee ids the joins answered, in order.
SCRIPT: list[tuple[str, str, str | None, Any]] = [
    ("GET", "/api/spaces", MOD, None),
    ("GET", "/api/spaces", None, None),  # 401
    ("GET", "/api/spaces/demo/activemeeting", BRIDGE, None),
    ("GET", "/api/spaces/nowhere/activemeeting", BRIDGE, None),  # 404
    ("PUT", "/api/spaces/demo/activemeeting", BRIDGE, None),  # 405
    ("GET", "/api/elsewhere", BRIDGE, None),  # 404, no route
    ("POST", M + "/attendees", BRIDGE, {"attendeeType": "phone", "displayName": "Desk 1"}),
    ("POST", M + "/attendees", BRIDGE, {"attendeeType": "phone"}),  # 400 missing field
    ("POST", M + "/attendees", BRIDGE, {"attendeeType": 7, "displayName": "x"}),  # 400 bad field
    ("POST", M + "/attendees", MEMBER, {"attendeeType": "web", "displayName": "Alice"}),
    ("POST", M + "/attendees/phone/{a0}/mediastate", BRIDGE, {"audio": False}),
    ("POST", M + "/attendees/phone/{a0}/mediastate", GUEST, {"audio": True}),  # 403
    ("POST", M + "/attendees/phone/nobody/mediastate", BRIDGE, {"audio": True}),  # 404
    ("POST", M + "/attendees/raisedhands", BRIDGE, {"attendeeId": "{a0}", "attendeeType": "phone"}),
    ("POST", M + "/attendees/raisedhands/accept", MOD, {"attendeeId": "{a0}"}),
    ("POST", M + "/attendees/raisedhands/lower", MOD, {"attendeeId": "{a0}"}),
    ("POST", M + "/muteall", MOD, {"exclusionList": ["{a1}"]}),
    ("POST", M + "/muteall", MOD, {"exclusionList": "all"}),  # 400
    ("GET", M + "/attendees", MOD, None),
    ("GET", M, BRIDGE, None),
    ("PATCH", "/api/spaces/demo/settings", MOD, {"preventUnmuting": True}),
    ("PATCH", "/api/spaces/demo/settings", MEMBER, {"preventUnmuting": False}),  # 403
    ("POST", M + "/attendees/phone/{a0}/mediastate", BRIDGE, {"audio": True}),  # 403 prevented
    ("GET", "/api/spaces/lobby/activemeeting", BRIDGE, None),
    (
        "POST",
        M.replace("{space}", "lobby") + "/attendees",
        BRIDGE,
        {"attendeeType": "phone", "displayName": "Guest", "guest": True},
    ),
    (
        "POST",
        M.replace("{space}", "lobby") + "/attendees/meetingpermissions",
        BRIDGE,
        {"attendeeId": "{a2}", "attendeeType": "phone"},
    ),
    ("POST", M.replace("{space}", "lobby") + "/attendees/meetingpermissions/allow", MOD, {}),
    (
        "POST",
        M.replace("{space}", "lobby") + "/attendees/meetingpermissions/deny",
        MOD,
        {"attendeeId": "{a2}"},
    ),
    ("DELETE", M + "/attendees/phone/{a0}", BRIDGE, None),
    ("DELETE", M + "/attendees/phone/{a0}", BRIDGE, None),  # gone
    ("DELETE", M, MOD, None),
    ("POST", M + "/attendees", BRIDGE, {"attendeeType": "phone", "displayName": "Late"}),
]


@contextlib.asynccontextmanager
async def twin() -> AsyncIterator[RunningServer]:
    """A server whose ids and clock are deterministic, so that two of them answer alike."""
    counter = itertools.count()
    conference = Conference(CONFIG.spaces, ids=lambda: f"id{next(counter)}", now=lambda: 1e9)
    server = await start_server(CONFIG, conference)
    try:
        yield server
    finally:
        await server.close()


async def run_script(server: RunningServer, *, local: bool) -> list[tuple[int, Any]]:
    api = server.local_api()
    answers: list[tuple[int, Any]] = []
    attendees: list[str] = []
    meetings: dict[str, str] = {}
    async with aiohttp.ClientSession() as session:
        for method, template, token, raw in SCRIPT:
            parts = template.split("/")
            space = parts[3] if len(parts) > 3 and parts[3] != "{space}" else "demo"
            filled = {f"a{i}": a for i, a in enumerate(attendees)}
            path = template.format(space=space, meeting=meetings.get(space, "none"), **filled)
            body = None
            if raw is not None:
                body = {k: v.format(**filled) if isinstance(v, str) else v for k, v in raw.items()}
            if local:
                answer = await api.request(method, path, token or "", body)
            else:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                async with session.request(
                    method, server.url + path, json=body, headers=headers
                ) as response:
                    answer = (
                        response.status,
                        None if response.status == 204 else await response.json(),
                    )
            answers.append(answer)
            status, value = answer
            if isinstance(value, dict) and path.endswith("/activemeeting") and status == 200:
                meetings[space] = value["meetingId"]
            if method == "POST" and path.endswith("/attendees") and status == 201:
                assert isinstance(value, dict)
                attendees.append(value["attendeeId"])
    return answers


async def events_of(server: RunningServer, *, local: bool) -> tuple[list[Any], list[Any]]:
    listeners = {space: Listener() for space in ("demo", "lobby")}
    for space, listener in listeners.items():
        await listener.connect(server.url, MOD, space)
    try:
        answers = await run_script(server, local=local)
        await asyncio.sleep(0.2)  # the last events are on their way
        events = [
            listener.queue.get_nowait()
            for listener in listeners.values()
            for _ in range(listener.queue.qsize())
        ]
    finally:
        for listener in listeners.values():
            await listener.sio.disconnect()
    return answers, events


async def both() -> tuple[tuple[list[Any], list[Any]], tuple[list[Any], list[Any]]]:
    async with twin() as over_http, twin() as in_process:
        return await events_of(over_http, local=False), await events_of(in_process, local=True)


def test_the_local_api_answers_and_publishes_exactly_as_http_does() -> None:
    (http_answers, http_events), (local_answers, local_events) = asyncio.run(both())
    for step, (expected, got) in enumerate(zip(http_answers, local_answers, strict=True)):
        assert got == expected, f"step {step}: {SCRIPT[step][:2]}"
    statuses = {status for status, _ in http_answers}
    # The script reaches every kind of answer, or it would prove less than it claims.
    assert {200, 201, 202, 204, 400, 401, 403, 404, 405, 409} <= statuses, statuses
    assert local_events == http_events
    assert len(http_events) > 10


async def both_subscriptions() -> tuple[list[Any], list[Any]]:
    over_socket: list[Any] = []
    in_process: list[Any] = []
    async with twin() as server:
        socket = SpacesSubscription(server.url, BRIDGE, on_event=over_socket.append)
        local = LocalSubscription(server.realtime, on_event=in_process.append)
        for subscription in (socket, local):
            await subscription.start()
            for space in ("demo", "lobby"):
                await subscription.subscribe(space)
        async with asyncio.timeout(5):
            while not over_socket:  # the socket connects (and subscribes) in the background
                await asyncio.sleep(0.01)
        with pytest.raises(NotFound):
            await local.subscribe("nowhere")
        try:
            await run_script(server, local=True)
            await asyncio.sleep(0.3)  # the socket's last events are on their way
        finally:
            await socket.close()
            await local.close()
    return over_socket, in_process


def test_the_local_subscription_delivers_what_the_socket_delivers() -> None:
    over_socket, in_process = asyncio.run(both_subscriptions())
    assert isinstance(in_process[0], Connected)
    events = [e for e in over_socket if not isinstance(e, Connected)]
    assert len(events) > 10
    assert in_process[1:] == events
