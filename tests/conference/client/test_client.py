"""SpacesClient against the real conference server (bridge.conference.server) on loopback, and against tiny
aiohttp apps that misbehave on purpose (503s, slowness, garbage) to exercise retries and errors."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from bridge.conference.client.client import SpacesClient
from bridge.conference.client.errors import (
    ApiError,
    BadRequest,
    ConnectError,
    Forbidden,
    InvalidResponse,
    MeetingEndedError,
    NotFound,
    PreventUnmuting,
    RequestTimeout,
    ServerError,
    SpacesError,
    TransportError,
    Unauthorized,
    api_error,
)
from bridge.conference.client.models import (
    GuestPolicy,
    Hand,
    JoinResult,
    MediaState,
    PayloadError,
    Role,
    read_media_endpoint,
)
from bridge.conference.wire import MediaEndpoint, MediaOffer

from .harness import BRIDGE, MEMBER, MODERATOR, OTHER_BRIDGE, client, conference_server, run


async def join_phone(
    c: SpacesClient,
    space: str,
    meeting: str,
    name: str = "Desk",
    *,
    guest: bool = False,
    role: Role | None = None,
) -> JoinResult:
    return await c.join(
        space,
        meeting,
        attendee_type="phone",
        display_name=name,
        version=None,
        guest=guest,
        role=role,
    )


# --- the real server -----------------------------------------------------------------------------


def test_join_roster_meeting_leave() -> None:
    async def scenario() -> None:
        async with conference_server() as srv, client(srv.url, BRIDGE) as bridge:
            meeting = await bridge.active_meeting("demo")
            assert meeting.space_id == "demo" and meeting.meeting_id
            assert meeting.settings.guest_policy is GuestPolicy.ALWAYS_ACCEPT
            assert meeting.settings.auto_start is True
            joined = await bridge.join(
                "demo",
                meeting.meeting_id,
                attendee_type="phone",
                display_name="Desk 12",
                version=None,
                guest=False,
            )
            assert joined.role is Role.MEMBER and joined.admitted
            assert joined.media_state == MediaState(audio=True, video=False)
            # The embedded server has no media plane: it takes a media offer and names no endpoint.
            offered = await bridge.join(
                "demo",
                meeting.meeting_id,
                attendee_type="phone",
                display_name="Desk 13",
                version=None,
                guest=False,
                media=MediaOffer("127.0.0.1", 20002, ("PCMU", "PCMA")),
            )
            assert offered.admitted and offered.media is None
            await bridge.leave("demo", meeting.meeting_id, "phone", offered.attendee_id)
            roster = await bridge.roster("demo", meeting.meeting_id)
            (entry,) = roster
            assert entry.attendee_id == joined.attendee_id
            assert entry.display_name == "Desk 12" and entry.version is None
            assert entry.hand is Hand.LOWERED and entry.joined_at
            details = await bridge.meeting("demo", meeting.meeting_id)
            assert details.state == "active" and details.attendees == roster
            assert details.lobby == () and details.moderator_present is False
            await bridge.leave("demo", meeting.meeting_id, "phone", joined.attendee_id)
            assert await bridge.roster("demo", meeting.meeting_id) == ()
            # A second leave that nothing suggests was applied earlier is a real 404.
            with pytest.raises(NotFound):
                await bridge.leave("demo", meeting.meeting_id, "phone", joined.attendee_id)

    run(scenario)


def test_media_state_prevent_unmuting_and_hands() -> None:
    async def scenario() -> None:
        async with (
            conference_server() as srv,
            client(srv.url, BRIDGE) as bridge,
            client(srv.url, MODERATOR) as mod,
        ):
            mid = (await bridge.active_meeting("demo")).meeting_id
            phone = await bridge.join(
                "demo", mid, attendee_type="phone", display_name="P", version="1.1", guest=False
            )
            aid = phone.attendee_id
            muted = await bridge.set_media_state("demo", mid, "phone", aid, audio=False)
            assert muted.media_state.audio is False and muted.held is False
            settings = await mod.update_settings("demo", prevent_unmuting=True)
            assert settings.prevent_unmuting is True
            with pytest.raises(PreventUnmuting) as refused:
                await bridge.set_media_state("demo", mid, "phone", aid, audio=True)
            assert isinstance(refused.value, Forbidden)
            assert refused.value.status == 403 and refused.value.code == "prevent_unmuting"
            assert refused.value.message
            # The one-key flow: raise the hand, the moderator accepts, the unmute now passes.
            await bridge.raise_hand("demo", mid, aid, "phone")
            await bridge.raise_hand("demo", mid, aid, "phone")  # idempotent on the server
            await mod.accept_hand("demo", mid, aid, "phone")
            (entry,) = await bridge.roster("demo", mid)
            assert entry.hand is Hand.ACCEPTED
            unmuted = await bridge.set_media_state("demo", mid, "phone", aid, audio=True)
            assert unmuted.media_state.audio is True
            await bridge.lower_hand("demo", mid, aid, "phone")
            (entry,) = await bridge.roster("demo", mid)
            assert entry.hand is Hand.LOWERED
            held = await bridge.set_media_state("demo", mid, "phone", aid, held=True)
            assert held.held is True

    run(scenario)


def test_mute_all_by_moderator_and_by_bridge_initiator() -> None:
    async def scenario() -> None:
        async with (
            conference_server() as srv,
            client(srv.url, BRIDGE) as bridge,
            client(srv.url, MODERATOR) as mod,
        ):
            mid = (await bridge.active_meeting("demo")).meeting_id
            ids = [(await join_phone(bridge, "demo", mid, f"P{i}")).attendee_id for i in range(3)]
            muted = await mod.mute_all("demo", mid, [ids[0]])
            assert set(muted) == {ids[1], ids[2]}
            roster = {e.attendee_id: e for e in await bridge.roster("demo", mid)}
            assert roster[ids[0]].media_state.audio is True
            assert roster[ids[1]].media_state.audio is False
            # A bridge token mutes all through a phone it authenticated as a moderator.
            chair = await join_phone(bridge, "demo", mid, "Chair", role=Role.MODERATOR)
            chair_id = chair.attendee_id
            assert chair.role is Role.MODERATOR
            muted = await bridge.mute_all("demo", mid, (), initiator=chair_id)
            assert ids[0] in muted and chair_id not in muted
            with pytest.raises(Forbidden):
                await bridge.mute_all("demo", mid, ())  # no initiator: a bridge is no moderator

    run(scenario)


def test_lobby_request_allow_deny_and_remember() -> None:
    async def scenario() -> None:
        async with (
            conference_server() as srv,
            client(srv.url, BRIDGE) as bridge,
            client(srv.url, MODERATOR) as mod,
        ):
            mid = (await bridge.active_meeting("lobby")).meeting_id
            guests = [await join_phone(bridge, "lobby", mid, f"G{i}", guest=True) for i in range(3)]
            gids = [g.attendee_id for g in guests]
            assert not any(g.admitted for g in guests)
            for gid in gids:
                await bridge.request_permission("lobby", mid, gid, "phone")
            details = await mod.meeting("lobby", mid)
            assert [w.attendee_id for w in details.lobby] == gids
            await mod.allow_guest("lobby", mid, gids[0])
            await mod.deny_guest("lobby", mid, gids[1], remember=True)
            roster = {e.attendee_id: e for e in await mod.roster("lobby", mid)}
            assert roster[gids[0]].admitted and gids[1] not in roster
            # "remember" denied every other waiting guest and changed the policy.
            assert gids[2] not in roster
            meeting = await mod.active_meeting("lobby")
            assert meeting.settings.guest_policy is GuestPolicy.ALWAYS_DENY
            with pytest.raises(Forbidden) as denied:
                await join_phone(bridge, "lobby", mid, "Late", guest=True)
            assert denied.value.code == "guest_denied"
            with pytest.raises(ApiError) as again:
                await bridge.request_permission("lobby", mid, gids[0], "phone")
            assert again.value.status == 409

    run(scenario)


def test_errors_map_to_the_tree() -> None:
    async def scenario() -> None:
        async with (
            conference_server() as srv,
            client(srv.url, "not-a-token-at-all-000") as stranger,
            client(srv.url, BRIDGE) as bridge,
            client(srv.url, OTHER_BRIDGE) as other,
            client(srv.url, MEMBER) as member,
            client(srv.url, MODERATOR) as mod,
        ):
            with pytest.raises(Unauthorized) as unauthorized:
                await stranger.active_meeting("demo")
            assert unauthorized.value.status == 401
            with pytest.raises(NotFound):
                await bridge.active_meeting("no-such-space")
            with pytest.raises(NotFound):
                await bridge.active_meeting("idle")  # no meeting and no auto-start
            with pytest.raises(Forbidden):
                await member.update_settings("demo", mute_on_entry=True)
            mid = (await bridge.active_meeting("demo")).meeting_id
            with pytest.raises(BadRequest):
                await bridge.join(
                    "demo",
                    mid,
                    attendee_type="x" * 100,
                    display_name="P",
                    version=None,
                    guest=False,
                )
            phone = await join_phone(bridge, "demo", mid)
            aid = phone.attendee_id
            with pytest.raises(Forbidden):  # a bridge acts for its own attendees only
                await other.set_media_state("demo", mid, "phone", aid, audio=False)
            await mod.end_meeting("demo", mid)
            await mod.end_meeting("demo", mid)  # idempotent for the caller
            with pytest.raises(MeetingEndedError) as ended:
                await join_phone(bridge, "demo", mid)
            assert ended.value.status == 409 and ended.value.code == "meeting_ended"
            # Auto-start: the next read of the active meeting starts a new one.
            assert (await bridge.active_meeting("demo")).meeting_id != mid

    run(scenario)


def test_mute_on_entry_join() -> None:
    async def scenario() -> None:
        async with conference_server() as srv, client(srv.url, BRIDGE) as bridge:
            meeting = await bridge.active_meeting("entry")
            assert meeting.settings.mute_on_entry
            joined = await join_phone(bridge, "entry", meeting.meeting_id)
            assert joined.media_state.audio is False

    run(scenario)


def test_on_request_observes_route_templates() -> None:
    seen: list[tuple[str, int | None, float]] = []

    async def scenario() -> None:
        async with (
            conference_server() as srv,
            client(srv.url, BRIDGE, on_request=lambda *a: seen.append(a)) as bridge,
        ):
            mid = (await bridge.active_meeting("demo")).meeting_id
            phone = await join_phone(bridge, "demo", mid)
            await bridge.set_media_state("demo", mid, "phone", phone.attendee_id, audio=False)
            with pytest.raises(NotFound):
                await bridge.active_meeting("nowhere")

    run(scenario)
    assert [(route, status) for route, status, _ in seen] == [
        ("GET /api/spaces/:spaceId/activemeeting", 200),
        ("POST /api/spaces/:spaceId/meetings/:meetingId/attendees", 201),
        (
            "POST /api/spaces/:spaceId/meetings/:meetingId/attendees/:attendeeType/:attendeeId"
            "/mediastate",
            200,
        ),
        ("GET /api/spaces/:spaceId/activemeeting", 404),
    ]
    assert all(0 <= seconds < 5 for _, _, seconds in seen)


def test_ids_are_quoted_as_one_path_segment() -> None:
    async def scenario() -> None:
        async with conference_server() as srv, client(srv.url, BRIDGE) as bridge:
            with pytest.raises(NotFound):
                await bridge.active_meeting("demo/../demo")

    run(scenario)


# --- transport failures and retries --------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MEETING = {
    "meetingId": "m1",
    "spaceId": "s",
    "settings": {
        "preventUnmuting": False,
        "muteOnEntry": False,
        "guestPolicy": "ALWAYS_ACCEPT",
        "autoStart": True,
    },
}


@contextlib.asynccontextmanager
async def tiny_server(handler: Handler) -> AsyncIterator[str]:
    """A one-handler aiohttp app on a free loopback port; yields its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def fast(url: str, seen: list[tuple[str, int | None, float]], **kw: object) -> SpacesClient:
    options: dict[str, object] = {
        "backoff": 0.01,
        "backoff_max": 0.02,
        "on_request": lambda *a: seen.append(a),
    } | kw
    return SpacesClient(url, BRIDGE, **options)  # type: ignore[arg-type]


def test_stopped_server_gives_connect_error_after_bounded_retries() -> None:
    seen: list[tuple[str, int | None, float]] = []

    async def scenario() -> float:
        async with conference_server() as srv:
            url = srv.url
        async with fast(url, seen, retries=2) as c:
            started = time.monotonic()
            with pytest.raises(ConnectError) as failed:
                await c.active_meeting("demo")
            elapsed = time.monotonic() - started
            assert isinstance(failed.value, TransportError)
            assert failed.value.maybe_applied is False  # refused: never reached a server
            assert failed.value.route == "GET /api/spaces/:spaceId/activemeeting"
            assert len(seen) == 3 and all(status is None for _, status, _ in seen)
            seen.clear()
            # A POST is never retried: it may have been applied.
            with pytest.raises(ConnectError):
                await c.raise_hand("demo", "m", "a", "phone")
            assert len(seen) == 1
            return elapsed

    assert run(scenario) < 1.0


def test_get_retried_after_503_then_succeeds() -> None:
    seen: list[tuple[str, int | None, float]] = []
    answers = [503, 502, 200]

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.headers["Authorization"] == f"Bearer {BRIDGE}"
        assert request.headers["accept-version"] == "1.1"
        status = answers.pop(0)
        if status != 200:
            return web.Response(status=status, text="busy")  # a gateway's HTML, not JSON
        return web.json_response(MEETING)

    async def scenario() -> None:
        async with tiny_server(handler) as url, fast(url, seen, retries=2) as c:
            meeting = await c.active_meeting("s")
            assert meeting.meeting_id == "m1"

    run(scenario)
    assert [status for _, status, _ in seen] == [503, 502, 200]


def test_retries_are_bounded_and_posts_are_not_retried_on_503() -> None:
    seen: list[tuple[str, int | None, float]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "overloaded", "message": "later"}, status=503)

    async def scenario() -> None:
        async with tiny_server(handler) as url, fast(url, seen, retries=3) as c:
            with pytest.raises(ServerError) as failed:
                await c.roster("s", "m")
            assert failed.value.status == 503 and failed.value.code == "overloaded"
            assert len(seen) == 4
            seen.clear()
            with pytest.raises(ServerError):
                await c.mute_all("s", "m", ())
            assert len(seen) == 1

    run(scenario)


def test_timeout_is_per_request_and_retried_for_gets() -> None:
    seen: list[tuple[str, int | None, float]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.json_response(MEETING)

    async def scenario() -> None:
        async with tiny_server(handler) as url, fast(url, seen, retries=1, timeout=0.1) as c:
            with pytest.raises(RequestTimeout):
                await c.active_meeting("s")

    run(scenario)
    assert len(seen) == 2 and all(status is None for _, status, _ in seen)


def test_retried_leave_that_finds_the_attendee_gone_succeeds() -> None:
    seen: list[tuple[str, int | None, float]] = []
    answers = [504, 404]

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.method == "DELETE"
        status = answers.pop(0)
        return web.json_response({"error": "x", "message": "y"}, status=status)

    async def scenario() -> None:
        async with tiny_server(handler) as url, fast(url, seen) as c:
            await c.leave("s", "m", "phone", "a1")

    run(scenario)
    assert [status for _, status, _ in seen] == [504, 404]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"meetingId": "m1"}', b'{"meetingId": 1, "spaceId": "s"}'],
)
def test_bad_success_body_is_invalid_response(body: bytes) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    async def scenario() -> None:
        async with tiny_server(handler) as url, fast(url, []) as c:
            with pytest.raises(InvalidResponse):
                await c.active_meeting("s")

    run(scenario)


def test_error_without_json_body_keeps_the_status() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=418, text="teapot")

    async def scenario() -> None:
        async with tiny_server(handler) as url, fast(url, []) as c:
            with pytest.raises(ApiError) as failed:
                await c.active_meeting("s")
            assert type(failed.value) is ApiError
            assert failed.value.code == "http_418" and failed.value.message == "teapot"

    run(scenario)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "bad_json", BadRequest),
        (401, "unauthorized", Unauthorized),
        (403, "forbidden", Forbidden),
        (403, "prevent_unmuting", PreventUnmuting),
        (404, "not_found", NotFound),
        (409, "meeting_ended", MeetingEndedError),
        (500, "internal", ServerError),
        (429, "slow_down", ApiError),
    ],
)
def test_api_error_classes(status: int, code: str, kind: type[ApiError]) -> None:
    error = api_error(status, code, "m")
    assert type(error) is kind and isinstance(error, SpacesError)
    assert (error.status, error.code, error.message) == (status, code, "m")


def test_closed_client_refuses_use() -> None:
    async def scenario() -> None:
        c = SpacesClient("http://127.0.0.1:9", BRIDGE)
        await c.close()
        with pytest.raises(RuntimeError):
            await c.active_meeting("s")

    run(scenario)


def test_media_endpoint_of_a_join_answer() -> None:
    endpoint = MediaEndpoint("::1", 40000, "PCMA", 8)
    assert read_media_endpoint(endpoint.to_json()) == endpoint
    assert read_media_endpoint(None) is None
    rtp = {"ip": "127.0.0.1", "port": 40000}
    for bad in (
        {"rtp": {"ip": "janus", "port": 40000}, "codec": "PCMU", "payloadType": 0},
        {"rtp": {**rtp, "port": 70000}, "codec": "PCMU", "payloadType": 0},
        {"rtp": {**rtp, "port": True}, "codec": "PCMU", "payloadType": 0},
        {"rtp": rtp, "codec": "opus", "payloadType": 111},
        {"rtp": rtp, "codec": "PCMU", "payloadType": 200},
        {"codec": "PCMU", "payloadType": 0},
        "127.0.0.1:40000",
    ):
        with pytest.raises(PayloadError):
            read_media_endpoint(bad)
