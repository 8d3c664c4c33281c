"""After a Socket.IO reconnection the bridge re-reads every call's state and re-signals phones that
disagree, because events sent while it was disconnected are lost (docs/behaviour.md, Meeting
lifecycle)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bridge.sip.sdp import Direction
from tests.calls.stack import Stack, restart
from tests.interop.harness import free_port


async def until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        await asyncio.sleep(0.01)


def test_a_mute_missed_during_a_server_restart_reaches_the_phone() -> None:
    async def scenario() -> None:
        stack = await Stack.start(free_port(both=False) & ~1)
        phone = stack.phone
        try:
            phone.call()
            stack.wire.flush()
            await until(lambda: phone.told is Direction.SENDRECV, 5, "answered unmuted")
            meeting = (await stack.moderator.active_meeting("demo")).meeting_id
            attendee = (await stack.moderator.roster("demo", meeting))[0].attendee_id
            moderator = await restart(stack)
            # The bridge's socket is down (it reconnects after a backoff of at least 0.25 s):
            # this mute's events go nowhere.
            await moderator.set_media_state("demo", meeting, "phone", attendee, audio=False)
            assert phone.told is Direction.SENDRECV
            await until(lambda: phone.told is Direction.SENDONLY, 10, "told muted after resync")
            assert not stack.failures
        finally:
            await stack.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))
