"""SpacesSubscription against the real conference server: typed events after admin actions, legacy
reports, and a server restart in the middle of a subscription."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
import socketio  # type: ignore[import-untyped]
from aiohttp import web

from bridge.conference.client.errors import ConnectError, Forbidden, NotFound
from bridge.conference.client.events import (
    AttendeeJoined,
    AttendeeLeft,
    AttendeeUpdated,
    Connected,
    Disconnected,
    MeetingEnded,
    MuteAllDone,
    MuteAllStarted,
    PermissionRequested,
    PermissionUpdated,
    Resynced,
    SettingsUpdated,
    SpacesEvent,
    TracksStatus,
    TracksStatusChangeRequest,
)
from bridge.conference.client.realtime import SpacesSubscription

from .harness import BRIDGE, MODERATOR, EventLog, client, conference_server, restart, run, start


@contextlib.asynccontextmanager
async def subscription(
    url: str, log: EventLog, token: str = BRIDGE
) -> AsyncIterator[SpacesSubscription]:
    sub = SpacesSubscription(
        url,
        token,
        on_event=log,
        reconnect_delay=0.05,
        reconnect_delay_max=0.2,
        connect_timeout=2.0,
        ack_timeout=2.0,
        close_timeout=0.2,
    )
    async with sub:
        yield sub


def is_(kind: type) -> Callable[[SpacesEvent], bool]:
    return lambda event: isinstance(event, kind)


def test_events_arrive_typed_after_admin_actions() -> None:
    async def scenario() -> None:
        log = EventLog()
        async with (
            conference_server() as srv,
            client(srv.url, BRIDGE) as bridge,
            client(srv.url, MODERATOR) as mod,
            subscription(srv.url, log) as sub,
        ):
            await sub.subscribe("demo")  # remembered before the connection is up
            await log.expect(is_(Connected))
            assert sub.connected and sub.spaces == ("demo",)
            mid = (await bridge.active_meeting("demo")).meeting_id
            phone = await bridge.join(
                "demo", mid, attendee_type="phone", display_name="P", version=None, guest=False
            )
            aid = phone.attendee_id
            joined = await log.expect(is_(AttendeeJoined))
            assert isinstance(joined, AttendeeJoined) and joined.entry.attendee_id == aid
            assert joined.space_id == "demo"

            await mod.set_media_state("demo", mid, "phone", aid, audio=False)  # admin mute
            order = await log.expect(is_(TracksStatusChangeRequest))
            assert order == TracksStatusChangeRequest("demo", aid, audio=False, video=False)

            await mod.update_settings("demo", prevent_unmuting=True)
            settings = await log.expect(is_(SettingsUpdated))
            assert isinstance(settings, SettingsUpdated) and settings.settings.prevent_unmuting

            await bridge.raise_hand("demo", mid, aid, "phone")
            assert await log.expect(is_(PermissionRequested)) == PermissionRequested(
                "demo", aid, "PERMISSION_UNMUTE"
            )
            await mod.accept_hand("demo", mid, aid, "phone")
            assert await log.expect(is_(PermissionUpdated)) == PermissionUpdated(
                "demo", aid, "PERMISSION_UNMUTE", "GRANTED"
            )
            await bridge.set_media_state("demo", mid, "phone", aid, audio=True)
            status = await log.expect(is_(TracksStatus))
            assert status == TracksStatus("demo", aid, audio=True, video=False)
            updated = await log.expect(is_(AttendeeUpdated))
            assert isinstance(updated, AttendeeUpdated) and updated.entry.media_state.audio

            await mod.mute_all("demo", mid, ())
            assert await log.expect(is_(MuteAllStarted)) == MuteAllStarted("demo", None)
            done = await log.expect(is_(MuteAllDone))
            assert done == MuteAllDone("demo", ())
            # The phone joined as legacy (no version): it gets its own order after "muted".
            assert await log.expect(is_(TracksStatusChangeRequest)) == (
                TracksStatusChangeRequest("demo", aid, audio=False, video=False)
            )

            await mod.end_meeting("demo", mid)
            assert await log.expect(is_(MeetingEnded)) == MeetingEnded("demo", mid)
            assert sub.malformed_events == 0

    run(scenario)


def test_lobby_events() -> None:
    async def scenario() -> None:
        log = EventLog()
        async with (
            conference_server() as srv,
            client(srv.url, BRIDGE) as bridge,
            client(srv.url, MODERATOR) as mod,
            subscription(srv.url, log) as sub,
        ):
            await log.expect(is_(Connected))
            await sub.subscribe("lobby")  # while connected: acknowledged at once
            mid = (await bridge.active_meeting("lobby")).meeting_id
            chair = await mod.join(
                "lobby", mid, attendee_type="web", display_name="Chair", version="1.1", guest=False
            )
            assert chair.admitted
            guest = await bridge.join(
                "lobby", mid, attendee_type="phone", display_name="G", version=None, guest=True
            )
            await bridge.request_permission("lobby", mid, guest.attendee_id, "phone")
            assert await log.expect(is_(PermissionRequested)) == PermissionRequested(
                "lobby", guest.attendee_id, "MEETING_JOIN"
            )
            await mod.deny_guest("lobby", mid, guest.attendee_id)
            assert await log.expect(is_(PermissionUpdated)) == PermissionUpdated(
                "lobby", guest.attendee_id, "MEETING_JOIN", "REJECTED"
            )
            left = await log.expect(is_(AttendeeLeft))
            assert isinstance(left, AttendeeLeft) and left.entry.attendee_id == guest.attendee_id

    run(scenario)


def test_legacy_report_refused_under_prevent_unmuting_raises_the_hand() -> None:
    async def scenario() -> None:
        log = EventLog()
        async with (
            conference_server() as srv,
            client(srv.url, BRIDGE) as bridge,
            client(srv.url, MODERATOR) as mod,
            subscription(srv.url, log) as sub,
        ):
            await sub.subscribe("demo")
            await log.expect(is_(Connected))
            mid = (await bridge.active_meeting("demo")).meeting_id
            phone = await bridge.join(
                "demo", mid, attendee_type="phone", display_name="P", version=None, guest=False
            )
            aid = phone.attendee_id
            await sub.send_tracksstatus("demo", aid, audio=False, video=False)  # allowed: synced
            assert await log.expect(is_(TracksStatus)) == TracksStatus(
                "demo", aid, audio=False, video=False
            )
            await mod.update_settings("demo", prevent_unmuting=True)
            await sub.send_tracksstatus("demo", aid, audio=True, video=False)
            # Blocked: the server answers with its own state and raises the hand for the phone.
            assert await log.expect(is_(TracksStatusChangeRequest)) == (
                TracksStatusChangeRequest("demo", aid, audio=False, video=False)
            )
            assert await log.expect(is_(PermissionRequested)) == PermissionRequested(
                "demo", aid, "PERMISSION_UNMUTE"
            )
            with pytest.raises(NotFound):
                await sub.send_tracksstatus("demo", "nobody", audio=True, video=False)
            web = await mod.join(
                "demo", mid, attendee_type="web", display_name="W", version="1.1", guest=False
            )
            with pytest.raises(Forbidden):  # not one of this token's attendees
                await sub.send_tracksstatus("demo", web.attendee_id, audio=False, video=False)

    run(scenario)


def test_unknown_space_is_refused_and_forgotten() -> None:
    async def scenario() -> None:
        log = EventLog()
        async with conference_server() as srv, subscription(srv.url, log) as sub:
            await log.expect(is_(Connected))
            with pytest.raises(NotFound):
                await sub.subscribe("nowhere")
            assert sub.spaces == ()

    run(scenario)


def test_server_restart_is_survived() -> None:
    async def scenario() -> None:
        log = EventLog()
        srv = await start()
        try:
            async with (
                client(srv.url, BRIDGE) as bridge,
                client(srv.url, MODERATOR) as mod,
                subscription(srv.url, log) as sub,
            ):
                await sub.subscribe("demo")
                await sub.subscribe("lobby")
                await log.expect(is_(Connected))
                mid = (await bridge.active_meeting("demo")).meeting_id
                phone = await bridge.join(
                    "demo", mid, attendee_type="phone", display_name="P", version="1.1", guest=False
                )
                await log.expect(is_(AttendeeJoined))

                srv = await restart(srv)  # same port, same conference state
                await log.expect(is_(Disconnected))
                await log.expect(is_(Connected))
                resynced = await log.expect(is_(Resynced))
                assert resynced == Resynced(("demo", "lobby"))
                assert sub.connected

                # The state survived and the re-sent subscription delivers later events.
                await mod.set_media_state("demo", mid, "phone", phone.attendee_id, audio=False)
                order = await log.expect(is_(TracksStatusChangeRequest))
                assert order == TracksStatusChangeRequest(
                    "demo", phone.attendee_id, audio=False, video=False
                )
                # Connection events came in order: up, down, up, resynced.
                kinds = [
                    type(e).__name__
                    for e in log.events
                    if isinstance(e, Connected | Disconnected | Resynced)
                ]
                assert kinds == ["Connected", "Disconnected", "Connected", "Resynced"]
        finally:
            await srv.close()

    run(scenario)


def test_first_connection_is_retried_until_the_server_appears() -> None:
    async def scenario() -> None:
        log = EventLog()
        async with conference_server() as probe:  # learn a free port, then stop
            port = int(probe.url.rsplit(":", 1)[1])
            url = probe.url
        async with subscription(url, log) as sub:
            await sub.subscribe("demo")
            down = await log.expect(is_(Disconnected))
            assert isinstance(down, Disconnected) and "connect failed" in down.reason
            with pytest.raises(ConnectError):
                await sub.send_tracksstatus("demo", "a", audio=False, video=False)
            await asyncio.sleep(0.3)  # several failed attempts, reported once
            assert len(log.of_type(Disconnected)) == 1
            async with conference_server(port) as srv:
                await log.expect(is_(Connected))
                assert not log.of_type(Resynced)  # a first connection has nothing to re-read
                async with client(srv.url, BRIDGE) as bridge:
                    await bridge.active_meeting("demo")
                    mid = (await bridge.active_meeting("demo")).meeting_id
                    await bridge.join(
                        "demo",
                        mid,
                        attendee_type="phone",
                        display_name="P",
                        version=None,
                        guest=False,
                    )
                await log.expect(is_(AttendeeJoined))

    run(scenario)


def test_a_failing_handler_does_not_stop_the_events() -> None:
    async def scenario() -> None:
        seen: list[SpacesEvent] = []
        connected = asyncio.Event()

        def handler(event: SpacesEvent) -> None:
            seen.append(event)
            if isinstance(event, Connected):
                connected.set()
            raise RuntimeError("consumer bug")

        async with conference_server() as srv, client(srv.url, BRIDGE) as bridge:
            sub = SpacesSubscription(srv.url, BRIDGE, on_event=handler, reconnect_delay=0.05)
            async with sub:
                await sub.subscribe("demo")
                await asyncio.wait_for(connected.wait(), 5)
                mid = (await bridge.active_meeting("demo")).meeting_id
                for name in ("A", "B"):
                    await bridge.join(
                        "demo",
                        mid,
                        attendee_type="phone",
                        display_name=name,
                        version=None,
                        guest=False,
                    )
                for _ in range(100):
                    if len([e for e in seen if isinstance(e, AttendeeJoined)]) == 2:
                        break
                    await asyncio.sleep(0.02)
                assert [e.entry.display_name for e in seen if isinstance(e, AttendeeJoined)] == [
                    "A",
                    "B",
                ]
                assert sub.connected

    run(scenario)


def test_unacknowledged_subscription_forces_a_reconnect() -> None:
    async def scenario() -> None:
        sio = socketio.AsyncServer(async_mode="aiohttp")
        calls: list[str] = []

        async def subscribe(sid: str, data: object) -> dict[str, bool]:
            calls.append(sid)
            if len(calls) == 1:
                await asyncio.sleep(1)  # longer than the ack timeout: a stuck server
            return {"ok": True}

        sio.on("SUBSCRIBE_CHANNEL", subscribe, namespace="/chat")
        app = web.Application()
        sio.attach(app)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        log = EventLog()
        sub = SpacesSubscription(
            f"http://{host}:{port}",
            BRIDGE,
            on_event=log,
            reconnect_delay=0.05,
            ack_timeout=0.2,
            close_timeout=0.2,
        )
        try:
            async with sub:
                await log.expect(is_(Connected))
                await sub.subscribe("demo")  # not acknowledged: the connection is abandoned
                await log.expect(is_(Disconnected))
                await log.expect(is_(Connected))
                assert await log.expect(is_(Resynced)) == Resynced(("demo",))
                assert len(calls) == 2 and calls[0] != calls[1]
        finally:
            await runner.cleanup()

    run(scenario)


def test_server_close_ends_connections_at_once_and_twice_is_harmless() -> None:
    """A stopping server closes its sockets itself (Engine.IO CLOSE): nothing waits for a ping
    interval (25 s, beyond this test's bound), and the client sees a lost connection."""

    async def scenario() -> None:
        log = EventLog()
        srv = await start()
        async with subscription(srv.url, log) as sub:
            await sub.subscribe("demo")
            await log.expect(is_(Connected))
            await srv.close()
            await log.expect(is_(Disconnected))
            await srv.close()

    run(scenario, timeout=10.0)


def test_close_while_connecting_always_ends() -> None:
    """close() at many points of the first connection ends the subscription. (python-socketio
    can swallow a cancellation inside connect(); the daemon's shutdown once hung on it, seen in
    tests/transport/test_transport.py, whose timing hits that window.)"""

    async def scenario() -> None:
        async with conference_server() as srv:
            for delay in [0.0, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03] * 2:
                sub = SpacesSubscription(srv.url, BRIDGE, on_event=lambda event: None)
                await sub.start()
                await sub.subscribe("demo")
                await asyncio.sleep(delay)
                async with asyncio.timeout(5):
                    await sub.close()

    run(scenario, timeout=60)
