"""After any interleaving of phone and server events, once events stop, the phone has been told the
server's state (docs/behaviour.md, Server to phone). Hypothesis picks the interleavings; the whole
stack is real (see stack.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.conference.client.errors import SpacesError
from tests.calls.stack import Stack
from tests.interop.harness import free_port

ACTIONS = (
    "admin_mute",
    "admin_unmute",
    "phone_mute",
    "phone_unmute",
    "hold",
    "resume",
    "mute_all",
    "prevent_on",
    "prevent_off",
    "raise_hand",
    "accept_hand",
    "lower_hand",
)


async def until(
    condition: Callable[[], object], timeout: float, what: str | Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"not {text} within {timeout}s")
        await asyncio.sleep(0.01)


async def scenario(actions: list[tuple[str, float]]) -> None:
    stack = await Stack.start(free_port(both=False) & ~1)
    phone, mod = stack.phone, stack.moderator
    try:
        phone.call()
        stack.wire.flush()
        await until(lambda: phone.dialog is not None and phone.told, 5, "answered")
        meeting = (await mod.active_meeting("demo")).meeting_id
        attendee = (await mod.roster("demo", meeting))[0].attendee_id

        async def act(action: str) -> None:
            match action:
                case "admin_mute" | "admin_unmute":
                    await mod.set_media_state(
                        "demo", meeting, "phone", attendee, audio=action == "admin_unmute"
                    )
                case "phone_mute" | "phone_unmute":
                    phone.sends = action == "phone_unmute"
                    phone.reoffer()
                case "hold" | "resume":
                    phone.held = action == "hold"
                    phone.reoffer()
                case "mute_all":
                    await mod.mute_all("demo", meeting)
                case "prevent_on" | "prevent_off":
                    await mod.update_settings("demo", prevent_unmuting=action == "prevent_on")
                case "raise_hand":
                    await stack.client.raise_hand("demo", meeting, attendee, "phone")
                case "accept_hand":
                    await mod.accept_hand("demo", meeting, attendee, "phone")
                case "lower_hand":
                    await mod.lower_hand("demo", meeting, attendee, "phone")
            stack.wire.flush()

        for action, pause in actions:
            with contextlib.suppress(SpacesError):  # refused in this state (409, 403)
                await act(action)
            await asyncio.sleep(pause)
        if phone.held:
            phone.held = False
            phone.reoffer()

        audio: list[bool] = []

        async def server_audio() -> None:
            while True:
                roster = await mod.roster("demo", meeting)
                audio[:] = [roster[0].media_state.audio]
                await asyncio.sleep(0.02)

        poller = asyncio.create_task(server_audio())

        def converged() -> bool:
            if poller.done():
                poller.result()  # raises what stopped it
                raise AssertionError("the roster poller stopped")
            bridge = stack.calls
            quiet = not any(c.offer_request is not None or c.busy for c in bridge.calls()) and not (
                phone.dialog and stack.phone.endpoint.invite_pending(phone.dialog)
            )
            told = phone.told is not None and phone.told.receives
            return bool(audio) and quiet and told == audio[0] and not stack.tasks

        try:
            await until(converged, 8, lambda: f"converged (told {phone.told}, server {audio})")
        finally:
            poller.cancel()
        assert not stack.failures, stack.failures
    finally:
        await stack.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.sampled_from([0.0, 0.002, 0.03])),
        min_size=1,
        max_size=8,
    )
)
def test_phone_converges_to_the_server_after_any_interleaving(
    actions: list[tuple[str, float]],
) -> None:
    asyncio.run(asyncio.wait_for(scenario(actions), 30))


def test_a_mute_then_unmute_burst_coalesces_into_the_final_state() -> None:
    """Admin mute/unmute faster than the phone answers: the phone ends unmuted, and was not sent
    one offer per change."""

    async def burst() -> None:
        await scenario([("admin_mute", 0.0), ("admin_unmute", 0.0)] * 5)

    asyncio.run(asyncio.wait_for(burst(), 30))
