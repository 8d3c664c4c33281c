"""The real server on a loopback port, driven by aiohttp.ClientSession and a python-socketio client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import aiohttp
import pytest
import socketio  # type: ignore[import-untyped]  # python-socketio ships no type information

from bridge.conference.server.app import RunningServer, start_server
from bridge.conference.server.config import ServerConfig, SpaceConfig, TokenConfig, embedded_default
from bridge.conference.server.model import Settings
from bridge.conference.wire import GuestPolicy, Role

MOD = "moderator-token-0123456789"
MEMBER = "member-token-0123456789"
GUEST = "guest-token-0123456789"
BRIDGE = "bridge-token-0123456789"
BRIDGE2 = "bridge2-token-0123456789"

CONFIG = ServerConfig(
    host="127.0.0.1",
    port=0,
    tokens=(
        TokenConfig(MOD, Role.MODERATOR, "console"),
        TokenConfig(MEMBER, Role.MEMBER, "alice"),
        TokenConfig(GUEST, Role.GUEST, "gina"),
        TokenConfig(BRIDGE, Role.BRIDGE, "bridge"),
        TokenConfig(BRIDGE2, Role.BRIDGE, "bridge2"),
    ),
    spaces=(
        SpaceConfig("demo", "Demo"),
        SpaceConfig("lobby", "Lobby", Settings(guest_policy=GuestPolicy.ASK_MODERATOR)),
        SpaceConfig("strict", "Strict", Settings(prevent_unmuting=True)),
        SpaceConfig("manual", "Manual", Settings(auto_start=False)),
    ),
)

TIMEOUT = 5.0


class Client:
    """An HTTP client holding one token, with helpers that return (status, json)."""

    def __init__(
        self, server: RunningServer, session: aiohttp.ClientSession, token: str | None
    ) -> None:
        self.url = server.url
        self.session = session
        self.headers = {"accept-version": "1.1"}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"

    async def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"headers": self.headers}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.url + path, **kwargs) as response:
            if response.status == 204:
                return 204, None
            assert response.content_type == "application/json"
            return response.status, await response.json()


class Listener:
    """A Socket.IO client subscribed to one space, collecting MEDIA_SESSION_RESPONSE in order."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def on_response(data: dict[str, Any]) -> None:
            await self.queue.put(data)

        self.sio.on("MEDIA_SESSION_RESPONSE", on_response, namespace="/chat")

    async def connect(self, url: str, token: str, space: str) -> None:
        await self.sio.connect(
            url, auth={"token": token}, namespaces=["/chat"], wait_timeout=TIMEOUT
        )
        ack = await self.sio.call(
            "SUBSCRIBE_CHANNEL",
            {"channel": {"type": "topic", "_id": space}},
            namespace="/chat",
            timeout=TIMEOUT,
        )
        assert ack == {"ok": True}

    async def expect(self, *categories: str) -> list[dict[str, Any]]:
        """The next events must be exactly these categories, in this order."""
        got = [await asyncio.wait_for(self.queue.get(), TIMEOUT) for _ in categories]
        assert [e["category"] for e in got] == list(categories), got
        return got

    async def quiet(self) -> None:
        await asyncio.sleep(0.1)
        assert self.queue.empty(), self.queue.get_nowait()


class Env:
    """A running server, a client per token and a listener on one space."""

    def __init__(self, server: RunningServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.mod = Client(server, session, MOD)
        self.member = Client(server, session, MEMBER)
        self.guest = Client(server, session, GUEST)
        self.bridge = Client(server, session, BRIDGE)
        self.bridge2 = Client(server, session, BRIDGE2)
        self.anonymous = Client(server, session, None)
        self.listener = Listener()

    async def meeting(self, space: str) -> str:
        status, body = await self.mod.call("GET", f"/api/spaces/{space}/activemeeting")
        assert status == 200
        meeting: str = body["meetingId"]
        return meeting

    async def join(self, client: Client, space: str, meeting: str, **body: Any) -> dict[str, Any]:
        body.setdefault("attendeeType", "phone" if client in (self.bridge, self.bridge2) else "web")
        body.setdefault("displayName", "someone")
        status, answer = await client.call(
            "POST", f"/api/spaces/{space}/meetings/{meeting}/attendees", body
        )
        assert status == 201, answer
        return dict(answer)


@contextlib.asynccontextmanager
async def environment(space: str = "demo") -> AsyncIterator[Env]:
    server = await start_server(CONFIG)
    try:
        async with aiohttp.ClientSession() as session:
            env = Env(server, session)
            await env.listener.connect(server.url, MOD, space)
            try:
                yield env
            finally:
                await env.listener.sio.disconnect()
    finally:
        await server.close()


def scenario(
    space: str = "demo",
) -> Callable[[Callable[[Env], Awaitable[None]]], Callable[[], None]]:
    """Run an async test body against a fresh server (no pytest-asyncio needed)."""

    def wrap(body: Callable[[Env], Awaitable[None]]) -> Callable[[], None]:
        def test() -> None:
            async def main() -> None:
                async with environment(space) as env:
                    await body(env)

            asyncio.run(main())

        test.__name__ = body.__name__
        return test

    return wrap


# ----------------------------------------------------------------- errors


@scenario()
async def test_errors_are_json_with_the_right_status(env: Env) -> None:
    m = await env.meeting("demo")
    base = f"/api/spaces/demo/meetings/{m}"
    a = await env.join(env.member, "demo", m)
    one = f"{base}/attendees/web/{a['attendeeId']}"
    cases: list[tuple[Client, str, str, Any, bytes | None, int, str]] = [
        (env.anonymous, "GET", "/api/spaces/demo/activemeeting", None, None, 401, "unauthorized"),
        (
            Client(env.server, env.mod.session, "wrong-token-0123456789"),
            "GET",
            base,
            None,
            None,
            401,
            "unauthorized",
        ),
        (env.mod, "GET", "/api/spaces/nowhere/activemeeting", None, None, 404, "not_found"),
        (env.mod, "GET", "/api/spaces/manual/activemeeting", None, None, 404, "no_active_meeting"),
        (env.mod, "GET", "/api/spaces/demo/meetings/nomeeting", None, None, 404, "not_found"),
        (env.mod, "POST", f"{base}/attendees", None, b"{not json", 400, "bad_json"),
        (env.mod, "POST", f"{base}/attendees", None, b"\xff\xfe", 400, "bad_json"),
        (env.mod, "POST", f"{base}/attendees", [1, 2], None, 400, "bad_json"),
        (env.mod, "POST", f"{base}/attendees", {"attendeeType": "web"}, None, 400, "missing_field"),
        (
            env.mod,
            "POST",
            f"{base}/attendees",
            {"attendeeType": 5, "displayName": "x"},
            None,
            400,
            "bad_field",
        ),
        (
            env.mod,
            "POST",
            f"{base}/attendees",
            {"attendeeType": "web", "displayName": "x", "role": "king"},
            None,
            400,
            "bad_field",
        ),
        (
            env.bridge,
            "POST",
            f"{base}/attendees",
            {
                "attendeeType": "phone",
                "displayName": "x",
                "media": {"rtp": {"ip": "x", "port": 5}, "codecs": ["PCMU"]},
            },
            None,
            400,
            "bad_field",
        ),
        (
            env.bridge,
            "POST",
            f"{base}/attendees",
            {
                "attendeeType": "phone",
                "displayName": "x",
                "media": {"rtp": {"ip": "127.0.0.1", "port": 0}, "codecs": ["PCMU"]},
            },
            None,
            400,
            "bad_field",
        ),
        (
            env.bridge,
            "POST",
            f"{base}/attendees",
            {
                "attendeeType": "phone",
                "displayName": "x",
                "media": {"rtp": {"ip": "::1", "port": 4000}, "codecs": ["G722"]},
            },
            None,
            400,
            "bad_field",
        ),
        (
            env.bridge,
            "POST",
            f"{base}/attendees",
            {
                "attendeeType": "phone",
                "displayName": "x",
                "media": {"rtp": {"ip": "::1", "port": 4000}, "codecs": []},
            },
            None,
            400,
            "bad_field",
        ),
        (
            env.bridge,
            "POST",
            f"{base}/attendees",
            {"attendeeType": "phone", "displayName": "x", "media": "127.0.0.1:4000"},
            None,
            400,
            "bad_field",
        ),
        (
            env.mod,
            "PATCH",
            "/api/spaces/demo/settings",
            {"preventUnmuting": "yes"},
            None,
            400,
            "bad_field",
        ),
        (
            env.mod,
            "PATCH",
            "/api/spaces/demo/settings",
            {"guestPolicy": "SOMETIMES"},
            None,
            400,
            "bad_field",
        ),
        (
            env.member,
            "PATCH",
            "/api/spaces/demo/settings",
            {"preventUnmuting": True},
            None,
            403,
            "forbidden",
        ),
        (env.mod, "POST", f"{one}/mediastate", {"audio": 1}, None, 400, "bad_field"),
        (env.bridge, "POST", f"{one}/mediastate", {"audio": False}, None, 403, "not_owner"),
        (
            env.mod,
            "POST",
            f"{base}/attendees/phone/{a['attendeeId']}/mediastate",
            {"audio": False},
            None,
            404,
            "not_found",
        ),
        (
            env.mod,
            "POST",
            f"{base}/attendees/web/nobody/mediastate",
            {"audio": False},
            None,
            404,
            "not_found",
        ),
        (env.mod, "POST", f"{base}/muteall", {"exclusionList": "all"}, None, 400, "bad_field"),
        (env.member, "POST", f"{base}/muteall", {"exclusionList": []}, None, 403, "forbidden"),
        (
            env.member,
            "POST",
            f"{base}/attendees/raisedhands",
            {"requestedPermissions": ["PERMISSION_FLY"]},
            None,
            400,
            "bad_field",
        ),
        (
            env.mod,
            "POST",
            f"{base}/attendees/raisedhands/accept",
            {"attendeeId": a["attendeeId"]},
            None,
            409,
            "hand_not_raised",
        ),
        (env.mod, "POST", f"{base}/attendees/raisedhands/accept", {}, None, 400, "missing_field"),
        (
            env.member,
            "POST",
            f"{base}/attendees/meetingpermissions",
            {"attendeeId": a["attendeeId"]},
            None,
            409,
            "already_admitted",
        ),
        (
            env.mod,
            "POST",
            f"{base}/attendees/meetingpermissions/allow",
            {"attendeeId": a["attendeeId"]},
            None,
            409,
            "not_in_lobby",
        ),
        (env.mod, "POST", "/api/spaces/demo/meetings", None, None, 409, "meeting_active"),
        (env.member, "DELETE", base, None, None, 403, "forbidden"),
        (env.mod, "GET", "/api/nothing/here", None, None, 404, "not_found"),
        (env.mod, "PUT", base, None, None, 405, "method_not_allowed"),
    ]
    for client, method, path, body, raw, status, code in cases:
        got_status, answer = await client.call(method, path, body, raw)
        assert (got_status, answer["error"]) == (status, code), (method, path, answer)
        assert isinstance(answer["message"], str) and answer["message"]


@scenario()
async def test_401_names_the_bearer_scheme(env: Env) -> None:
    async with env.anonymous.session.get(
        env.server.url + "/api/spaces/demo/activemeeting"
    ) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@scenario()
async def test_unexpected_failure_is_a_logged_500(env: Env) -> None:
    def broken(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("bug")

    # A stand-in that fails like a bug would: replacing the method is the point.
    env.server.conference.roster = broken  # type: ignore[method-assign]
    m = await env.meeting("demo")
    status, answer = await env.mod.call("GET", f"/api/spaces/demo/meetings/{m}/attendees")
    assert (status, answer["error"]) == (500, "internal")
    assert "bug" not in answer["message"]


@scenario()
async def test_body_size_is_bounded(env: Env) -> None:
    m = await env.meeting("demo")
    status, answer = await env.mod.call(
        "POST", f"/api/spaces/demo/meetings/{m}/muteall", raw=b" " * 100_000
    )
    assert status == 413 and answer["error"] == "request_entity_too_large"


# ----------------------------------------------------------- success paths


@scenario()
async def test_meeting_roster_settings_and_leave(env: Env) -> None:
    status, active = await env.member.call("GET", "/api/spaces/demo/activemeeting")
    assert status == 200 and set(active) == {"meetingId", "spaceId", "settings"}
    m = active["meetingId"]
    assert active["settings"] == {
        "preventUnmuting": False,
        "muteOnEntry": False,
        "guestPolicy": "ALWAYS_ACCEPT",
        "autoStart": True,
    }
    joined = await env.join(env.bridge, "demo", m, displayName="Desk 12", version="1.1")
    assert set(joined) == {"attendeeId", "attendeeType", "role", "mediaState", "admitted"}
    assert (joined["role"], joined["admitted"], joined["mediaState"]) == (
        "member",
        True,
        {"audio": True, "video": False},
    )
    [event] = await env.listener.expect("app.event.attendee.joined")
    assert event["topicId"] == "demo" and event["version"] == "1.1"
    assert event["sender"] == joined["attendeeId"]
    status, roster = await env.guest.call("GET", f"/api/spaces/demo/meetings/{m}/attendees")
    assert status == 200
    [entry] = roster
    assert entry == event["content"]
    assert set(entry) == {
        "attendeeId", "attendeeType", "displayName", "role", "version", "mediaState",
        "hand", "held", "guest", "admitted", "joinedAt", "endpoint",
    }  # fmt: skip
    assert entry["joinedAt"].endswith("Z") and entry["version"] == "1.1"
    assert entry["endpoint"] is None
    status, meeting = await env.member.call("GET", f"/api/spaces/demo/meetings/{m}")
    assert status == 200
    assert (meeting["state"], meeting["lobby"], meeting["moderatorPresent"]) == (
        "active",
        [],
        False,
    )
    status, settings = await env.mod.call(
        "PATCH", "/api/spaces/demo/settings", {"muteOnEntry": True}
    )
    assert status == 200 and settings["muteOnEntry"] is True
    [event] = await env.listener.expect("app.event.space.settings.updated")
    assert event["content"] == {"settings": settings}
    one = f"/api/spaces/demo/meetings/{m}/attendees/phone/{joined['attendeeId']}"
    status, state = await env.bridge.call(
        "POST", one + "/mediastate", {"audio": False, "held": True, "mdsrvSessionId": "x1"}
    )
    assert (status, state) == (
        200,
        {
            "attendeeId": joined["attendeeId"],
            "mediaState": {"audio": False, "video": False},
            "held": True,
        },
    )
    [ts, upd] = await env.listener.expect("tracksstatus", "app.event.attendee.updated")
    assert ts["content"] == {"attendeeId": joined["attendeeId"], "audio": False, "video": False}
    assert upd["content"]["held"] is True
    status, _ = await env.bridge2.call("DELETE", one)
    assert status == 403
    status, _ = await env.bridge.call("DELETE", one)
    assert status == 204
    [left] = await env.listener.expect("app.event.attendee.left")
    assert left["content"]["attendeeId"] == joined["attendeeId"]
    await env.listener.quiet()


@scenario("manual")
async def test_moderator_starts_a_meeting_where_nothing_auto_starts(env: Env) -> None:
    assert (await env.member.call("POST", "/api/spaces/manual/meetings"))[0] == 403
    status, body = await env.mod.call("POST", "/api/spaces/manual/meetings")
    assert status == 201 and body["spaceId"] == "manual"
    status, active = await env.member.call("GET", "/api/spaces/manual/activemeeting")
    assert status == 200 and active["meetingId"] == body["meetingId"]


# --------------------------------------------------- socket events in order


@scenario()
async def test_admin_mute_events(env: Env) -> None:
    m = await env.meeting("demo")
    a = (await env.join(env.bridge, "demo", m))["attendeeId"]
    await env.listener.expect("app.event.attendee.joined")
    status, body = await env.mod.call(
        "POST", f"/api/spaces/demo/meetings/{m}/attendees/phone/{a}/mediastate", {"audio": False}
    )
    assert status == 200 and body["mediaState"]["audio"] is False
    ts, _, req = await env.listener.expect(
        "tracksstatus", "app.event.attendee.updated", "request.tracksstatus.change"
    )
    assert req["content"] == ts["content"] == {"attendeeId": a, "audio": False, "video": False}
    assert req["sender"] == "server"


@scenario()
async def test_mute_all_events(env: Env) -> None:
    m = await env.meeting("demo")
    mod = (await env.join(env.mod, "demo", m))["attendeeId"]
    legacy = (await env.join(env.bridge, "demo", m))["attendeeId"]
    modern = (await env.join(env.bridge, "demo", m, version="1.1"))["attendeeId"]
    spared = (await env.join(env.member, "demo", m))["attendeeId"]
    await env.listener.expect(*["app.event.attendee.joined"] * 4)
    status, body = await env.mod.call(
        "POST", f"/api/spaces/demo/meetings/{m}/muteall", {"exclusionList": [spared]}
    )
    assert (status, body) == (200, {"muted": [legacy, modern]})
    events = await env.listener.expect(
        "app.event.all.parties.muting",
        "tracksstatus", "app.event.attendee.updated",
        "tracksstatus", "app.event.attendee.updated",
        "app.event.all.parties.muted",
        "request.tracksstatus.change",
    )  # fmt: skip
    assert events[0]["content"] == {"initiator": mod}
    assert events[5]["content"] == {"exclude": [{"attendeeId": mod}, {"attendeeId": spared}]}
    assert events[6]["content"] == {"attendeeId": legacy, "audio": False, "video": False}
    await env.listener.quiet()


@scenario()
async def test_mute_all_by_a_bridge_for_its_moderator_phone(env: Env) -> None:
    m = await env.meeting("demo")
    chair = (await env.join(env.bridge, "demo", m, role="moderator"))["attendeeId"]
    other = (await env.join(env.member, "demo", m))["attendeeId"]
    url = f"/api/spaces/demo/meetings/{m}/muteall"
    assert (await env.bridge.call("POST", url, {"exclusionList": []}))[0] == 403
    assert (await env.bridge2.call("POST", url, {"exclusionList": [], "attendeeId": chair}))[
        0
    ] == 403
    status, body = await env.bridge.call("POST", url, {"exclusionList": [], "attendeeId": chair})
    assert (status, body) == (200, {"muted": [other]})


@scenario("strict")
async def test_raise_accept_lower_hand_events(env: Env) -> None:
    m = await env.meeting("strict")
    joined = await env.join(env.bridge, "strict", m)
    a = joined["attendeeId"]
    assert joined["mediaState"]["audio"] is False  # prevent unmuting mutes on entry
    await env.listener.expect("app.event.attendee.joined", "request.tracksstatus.change")
    base = f"/api/spaces/strict/meetings/{m}/attendees"
    status, body = await env.bridge.call("POST", f"{base}/phone/{a}/mediastate", {"audio": True})
    assert (status, body["error"]) == (403, "prevent_unmuting")
    hand = {"requestedPermissions": ["PERMISSION_UNMUTE"], "attendeeId": a, "attendeeType": "phone"}
    assert (await env.bridge2.call("POST", f"{base}/raisedhands", hand))[0] == 403
    status, body = await env.bridge.call("POST", f"{base}/raisedhands", hand)
    assert (status, body) == (200, {"attendeeId": a, "hand": "raised"})
    [req, _] = await env.listener.expect(
        "app.event.meeting.permission.requested", "app.event.attendee.updated"
    )
    assert req["content"]["targetId"] == a and req["content"]["kind"] == "PERMISSION_UNMUTE"
    assert (await env.bridge.call("POST", f"{base}/raisedhands", hand))[0] == 200  # idempotent
    grant = {"grantedPermissions": ["PERMISSION_UNMUTE"], "attendeeId": a, "attendeeType": "phone"}
    assert (await env.bridge.call("POST", f"{base}/raisedhands/accept", grant))[0] == 403
    status, body = await env.mod.call("POST", f"{base}/raisedhands/accept", grant)
    assert (status, body) == (200, {"attendeeId": a, "hand": "accepted"})
    [upd, _] = await env.listener.expect(
        "app.event.meeting.permission.updated", "app.event.attendee.updated"
    )
    assert upd["content"] == {"targetId": a, "kind": "PERMISSION_UNMUTE", "state": "GRANTED"}
    status, body = await env.bridge.call("POST", f"{base}/phone/{a}/mediastate", {"audio": True})
    assert status == 200 and body["mediaState"]["audio"] is True
    await env.listener.expect("tracksstatus", "app.event.attendee.updated")
    reject = {
        "rejectedPermissions": ["PERMISSION_UNMUTE"],
        "attendeeId": a,
        "attendeeType": "phone",
    }
    status, body = await env.mod.call("POST", f"{base}/raisedhands/lower", reject)
    assert (status, body) == (200, {"attendeeId": a, "hand": "lowered"})
    events = await env.listener.expect(
        "app.event.meeting.permission.updated",
        "tracksstatus",
        "app.event.attendee.updated",
        "request.tracksstatus.change",
    )
    assert events[0]["content"]["state"] == "REJECTED"
    await env.listener.quiet()


@scenario("lobby")
async def test_lobby_allow_and_deny_events(env: Env) -> None:
    m = await env.meeting("lobby")
    base = f"/api/spaces/lobby/meetings/{m}/attendees"
    g1 = await env.join(env.bridge, "lobby", m, guest=True, displayName="Caller 1")
    g2 = await env.join(env.guest, "lobby", m, displayName="Gina")
    assert (g1["admitted"], g2["admitted"], g1["role"]) == (False, False, "guest")
    await env.listener.expect("app.event.attendee.joined", "app.event.attendee.joined")
    for client, g in ((env.bridge, g1), (env.guest, g2)):
        status, body = await client.call(
            "POST",
            f"{base}/meetingpermissions",
            {"attendeeId": g["attendeeId"], "attendeeType": g["attendeeType"]},
        )
        assert (status, body) == (202, {"attendeeId": g["attendeeId"], "state": "REQUESTED"})
    await env.listener.quiet()  # no moderator yet: queued silently
    status, meeting = await env.mod.call("GET", f"/api/spaces/lobby/meetings/{m}")
    assert [e["attendeeId"] for e in meeting["lobby"]] == [g1["attendeeId"], g2["attendeeId"]]
    await env.join(env.mod, "lobby", m, displayName="Chair")
    _, r1, r2 = await env.listener.expect(
        "app.event.attendee.joined",
        "app.event.meeting.permission.requested",
        "app.event.meeting.permission.requested",
    )
    assert [r1["content"]["targetId"], r2["content"]["targetId"]] == [
        g1["attendeeId"],
        g2["attendeeId"],
    ]
    assert (
        await env.member.call(
            "POST", f"{base}/meetingpermissions/allow", {"attendeeId": g1["attendeeId"]}
        )
    )[0] == 403
    status, _ = await env.mod.call(
        "POST", f"{base}/meetingpermissions/allow", {"attendeeId": g1["attendeeId"]}
    )
    assert status == 200
    granted, _, _ = await env.listener.expect(
        "app.event.meeting.permission.updated", "tracksstatus", "app.event.attendee.updated"
    )
    assert granted["content"] == {
        "targetId": g1["attendeeId"],
        "kind": "MEETING_JOIN",
        "state": "GRANTED",
    }
    status, _ = await env.mod.call(
        "POST",
        f"{base}/meetingpermissions/deny",
        {"attendeeId": g2["attendeeId"], "remember": True},
    )
    assert status == 200
    settings, rejected, left = await env.listener.expect(
        "app.event.space.settings.updated",
        "app.event.meeting.permission.updated",
        "app.event.attendee.left",
    )
    assert settings["content"]["settings"]["guestPolicy"] == "ALWAYS_DENY"
    assert rejected["content"]["state"] == "REJECTED"
    assert left["content"]["attendeeId"] == g2["attendeeId"]
    status, body = await env.guest.call(
        "POST", f"{base}", {"attendeeType": "web", "displayName": "late"}
    )
    assert (status, body["error"]) == (403, "guest_denied")


@scenario()
async def test_meeting_end_events_and_409_after(env: Env) -> None:
    m = await env.meeting("demo")
    a = (await env.join(env.bridge, "demo", m))["attendeeId"]
    await env.listener.expect("app.event.attendee.joined")
    status, _ = await env.mod.call("DELETE", f"/api/spaces/demo/meetings/{m}")
    assert status == 204
    [ended] = await env.listener.expect("app.event.meeting.ended")
    assert ended["content"] == {"meetingId": m}
    status, body = await env.bridge.call(
        "POST", f"/api/spaces/demo/meetings/{m}/attendees/phone/{a}/mediastate", {"audio": False}
    )
    assert (status, body["error"]) == (409, "meeting_ended")
    status, body = await env.mod.call("GET", f"/api/spaces/demo/meetings/{m}")
    assert (status, body["state"], body["attendees"]) == (200, "ended", [])
    assert await env.meeting("demo") != m


# --------------------------------------------------------------- Socket.IO


@scenario("strict")
async def test_legacy_unmute_under_prevent_unmuting_is_blocked_and_raises_the_hand(
    env: Env,
) -> None:
    m = await env.meeting("strict")
    a = (await env.join(env.bridge, "strict", m))["attendeeId"]
    await env.listener.expect("app.event.attendee.joined", "request.tracksstatus.change")
    phone = Listener()
    await phone.connect(env.server.url, BRIDGE, "strict")
    try:
        report = {
            "category": "tracksstatus",
            "topicId": "strict",
            "content": {"attendeeId": a, "audio": True, "video": False},
        }
        ack = await phone.sio.call(
            "SEND_MEDIA_SESSION_EVENTS", report, namespace="/chat", timeout=TIMEOUT
        )
        assert ack == {"ok": True, "attendeeId": a, "applied": False}
        blocked, raised, _ = await env.listener.expect(
            "request.tracksstatus.change",
            "app.event.meeting.permission.requested",
            "app.event.attendee.updated",
        )
        assert blocked["content"] == {"attendeeId": a, "audio": False, "video": False}
        assert (
            raised["content"]["targetId"] == a and raised["content"]["kind"] == "PERMISSION_UNMUTE"
        )
        await phone.expect(
            "request.tracksstatus.change",
            "app.event.meeting.permission.requested",
            "app.event.attendee.updated",
        )
        # A modern client is only told the server's state; its hand stays its own business.
        modern = {**report, "version": "1.1"}
        ack = await phone.sio.call(
            "SEND_MEDIA_SESSION_EVENTS", modern, namespace="/chat", timeout=TIMEOUT
        )
        assert ack["applied"] is False
        await env.listener.expect("request.tracksstatus.change")
        # Someone else's attendee, and malformed reports, are refused in the ack.
        other = Listener()
        await other.connect(env.server.url, BRIDGE2, "strict")
        ack = await other.sio.call(
            "SEND_MEDIA_SESSION_EVENTS", report, namespace="/chat", timeout=TIMEOUT
        )
        assert ack["ok"] is False and ack["error"] == "not_owner"
        ack = await other.sio.call(
            "SEND_MEDIA_SESSION_EVENTS", {"category": "chat"}, namespace="/chat", timeout=TIMEOUT
        )
        assert ack["ok"] is False and ack["error"] == "bad_field"
        await other.sio.disconnect()
    finally:
        await phone.sio.disconnect()


@scenario()
async def test_legacy_report_is_synced_when_allowed(env: Env) -> None:
    m = await env.meeting("demo")
    a = (await env.join(env.bridge, "demo", m))["attendeeId"]
    await env.listener.expect("app.event.attendee.joined")
    phone = Listener()
    await phone.connect(env.server.url, BRIDGE, "demo")
    try:
        report = {
            "category": "tracksstatus",
            "topicId": "demo",
            "content": {"attendeeId": a, "audio": False, "video": True},
        }
        ack = await phone.sio.call(
            "SEND_MEDIA_SESSION_EVENTS", report, namespace="/chat", timeout=TIMEOUT
        )
        assert ack == {"ok": True, "attendeeId": a, "applied": True}
        [ts, _] = await env.listener.expect("tracksstatus", "app.event.attendee.updated")
        assert ts["content"] == {"attendeeId": a, "audio": False, "video": True}
        assert ts["sender"] == a
    finally:
        await phone.sio.disconnect()


def test_socket_connect_needs_a_token() -> None:
    async def main() -> None:
        server = await start_server(CONFIG)
        try:
            for auth in (None, {"token": "nope"}, {"token": 5}):
                client = socketio.AsyncClient(reconnection=False)
                with pytest.raises(socketio.exceptions.ConnectionError):
                    await client.connect(
                        server.url, auth=auth, namespaces=["/chat"], wait_timeout=TIMEOUT
                    )
                await client.disconnect()
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(
                server.url, auth={"token": MEMBER}, namespaces=["/chat"], wait_timeout=TIMEOUT
            )
            for channel, error in (
                ({"type": "topic", "_id": "nowhere"}, "not_found"),
                ({"type": "room"}, "bad_field"),
            ):
                ack = await client.call(
                    "SUBSCRIBE_CHANNEL", {"channel": channel}, namespace="/chat", timeout=TIMEOUT
                )
                assert ack["ok"] is False and ack["error"] == error
            await client.disconnect()
        finally:
            await server.close()

    asyncio.run(main())


def test_embedded_default_serves_demo_with_its_tokens() -> None:
    async def main() -> None:
        base = embedded_default("dev-token-0123456789", "bridge-secret-0123456789")
        config = ServerConfig(host="127.0.0.1", port=0, tokens=base.tokens, spaces=base.spaces)
        server = await start_server(config)
        try:
            async with aiohttp.ClientSession() as session:
                for token, name in (
                    ("dev-token-0123456789", "moderator"),
                    ("bridge-secret-0123456789", "member"),
                ):
                    client = Client(server, session, token)
                    status, body = await client.call("GET", "/api/spaces/demo/activemeeting")
                    assert status == 200 and body["settings"]["guestPolicy"] == "ALWAYS_ACCEPT"
                    path = f"/api/spaces/demo/meetings/{body['meetingId']}/attendees"
                    status, joined = await client.call(
                        "POST", path, {"attendeeType": "web", "displayName": "x"}
                    )
                    assert (status, joined["role"]) == (201, name)
        finally:
            await server.close()

    asyncio.run(main())


@scenario()
async def test_socket_handler_bug_is_answered_not_raised(env: Env) -> None:
    def broken(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("bug")

    # A stand-in that fails like a bug would: replacing the method is the point.
    env.server.conference.report_tracks = broken  # type: ignore[method-assign]
    report = {"category": "tracksstatus", "topicId": "demo", "content": {"attendeeId": "a"}}
    ack = await env.listener.sio.call(
        "SEND_MEDIA_SESSION_EVENTS", report, namespace="/chat", timeout=TIMEOUT
    )
    assert ack == {"ok": False, "status": 500, "error": "internal", "message": "the server failed"}


@scenario()
async def test_spaces_list_and_the_endpoint_field(env: Env) -> None:
    status, spaces = await env.guest.call("GET", "/api/spaces")
    assert status == 200
    demo = next(s for s in spaces if s["spaceId"] == "demo")
    assert set(demo) == {"spaceId", "name", "settings", "activeMeetingId"}
    _, active = await env.member.call("GET", "/api/spaces/demo/activemeeting")
    m = active["meetingId"]
    status, spaces = await env.guest.call("GET", "/api/spaces")
    assert next(s for s in spaces if s["spaceId"] == "demo")["activeMeetingId"] == m
    await env.join(env.bridge, "demo", m, displayName="Desk", version="1.1", endpoint="sip/legacy")
    _, roster = await env.guest.call("GET", f"/api/spaces/demo/meetings/{m}/attendees")
    assert roster[0]["endpoint"] == "sip/legacy"
    status, error = await env.bridge.call(
        "POST",
        f"/api/spaces/demo/meetings/{m}/attendees",
        {"attendeeType": "phone", "displayName": "X", "endpoint": 5},
    )
    assert status == 400 and error["error"] == "bad_field"
