"""The bridge against a conference server that answers late, answers 5xx, resets connections or
loses its Socket.IO connection (docs/behaviour.md, Limits and bad input): callers get 503 with
Retry-After in bounded time, nobody is unmuted by a failure, and the bridge catches up with the
server once it answers again.

A real ``spaces-bridge server`` runs behind :class:`~tests.interop.remote.FaultProxy`; the
moderator acts on the server directly, so their actions still land while the bridge's path fails.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.interop.harness import Daemon, free_port, running_daemon
from tests.interop.meeting import Moderator, phone_call
from tests.interop.remote import TOKEN_ENV, FaultProxy, conference_server, remote_config
from tests.interop.scenario import Phone

pytestmark = pytest.mark.interop

SPACES = '[{ id = "demo" }, { id = "entry", mute_on_entry = true }]'
#: Short, so that a slow server is given up on quickly; every attempt is bounded by it.
TIMEOUT = 1.0
RETRY_AFTER = "Retry-After: *[0-9]+"
DTMF = "application/dtmf-relay"


@contextmanager
def faulty_setup(
    workdir: pathlib.Path, extra: str = ""
) -> Iterator[tuple[Daemon, FaultProxy, str]]:
    """The daemon, the proxy it talks through, and the server's own URL for the moderator."""
    port = free_port()
    server_url = f"http://127.0.0.1:{port}"
    (workdir / "bridge").mkdir()
    with (
        conference_server(workdir, port, SPACES),
        FaultProxy(server_url) as proxy,
        running_daemon(
            workdir / "bridge",
            extra_config=remote_config(proxy.url, timeout=TIMEOUT) + extra,
            env=TOKEN_ENV,
        ) as daemon,
    ):
        yield daemon, proxy, server_url


def direct(daemon: Daemon, server_url: str, space: str = "demo") -> Moderator:
    """A moderator who talks to the server itself, not through the failing proxy."""
    moderator = Moderator(daemon, space)
    moderator.base = server_url
    return moderator


@pytest.mark.parametrize("mode", ["slow", "error", "reset"])
def test_new_callers_get_503_with_retry_after_then_join_when_the_server_answers_again(
    tmp_path: pathlib.Path, mode: str
) -> None:
    with faulty_setup(tmp_path) as (daemon, proxy, _):
        proxy.mode = mode  # type: ignore[assignment]
        # The bound: three attempts of the meeting lookup (it is idempotent, so retried with a
        # backoff under a second), each bounded by the timeout.
        refused = Phone().refused(503, header=RETRY_AFTER, timeout_ms=int(TIMEOUT * 3000) + 3000)
        with phone_call(daemon, refused, tmp_path, name=f"refused-{mode}"):
            pass
        assert any(route.startswith("GET /api/spaces/demo") for route in proxy.seen), proxy.seen
        daemon.wait_log("call refused", "status=503")
        proxy.mode = "pass"
        with phone_call(daemon, Phone().invite().bye(), tmp_path, name=f"joined-{mode}"):
            pass


def test_callers_beyond_max_joining_are_refused_at_once_while_the_server_is_slow(
    tmp_path: pathlib.Path,
) -> None:
    waiting = Phone().refused(503, header="Conference Unavailable", timeout_ms=8000)
    turned_away = Phone("Desk Phone 2").refused(
        503, header="Too Many Calls Joining.*Retry-After: *[0-9]+", timeout_ms=1000
    )
    with faulty_setup(tmp_path, "\n[limits]\nmax_joining = 1\n") as (daemon, proxy, _):
        proxy.mode = "slow"
        with phone_call(daemon, waiting, tmp_path, name="waiting"):
            daemon.wait_log("call offered")
            with phone_call(daemon, turned_away, tmp_path, name="turned-away"):
                pass
            # The second caller was answered while the first still waited on the server.
            assert not daemon.log_has("call refused", "status=503")


def test_a_muted_caller_stays_muted_while_the_server_fails_and_unmutes_once_it_is_back(
    tmp_path: pathlib.Path,
) -> None:
    phone = (
        Phone()
        .invite(answer="sendonly")  # muted on entry
        .pause(2000)  # the server starts failing
        .info(DTMF, "Signal=*\nDuration=100")
        .info(DTMF, "Signal=6\nDuration=100", status=503, header=RETRY_AFTER)
        # No re-offer comes: sipp fails the call on an unexpected INVITE.
        .pause(2500)  # the server recovers
        .info(DTMF, "Signal=*\nDuration=100")
        .info(DTMF, "Signal=6\nDuration=100")
        .expect_reinvite("sendrecv")
        .pause(1000)
        .bye()
    )
    with faulty_setup(tmp_path) as (daemon, proxy, server_url):
        moderator = direct(daemon, server_url, "entry")
        with phone_call(daemon, phone, tmp_path, service="entry", timeout=40):
            attendee = moderator.phone()["attendeeId"]
            proxy.mode = "error"
            daemon.wait_log("conference unreachable", timeout=15)
            entry = moderator.entry(attendee)
            assert entry is not None and entry["mediaState"]["audio"] is False
            proxy.mode = "pass"
            moderator.wait_for(
                lambda _: (moderator.entry(attendee) or {}).get("mediaState", {}).get("audio"),
                what="the phone unmuted",
            )


def test_a_mute_missed_while_the_socket_was_down_reaches_the_phone_after_it_reconnects(
    tmp_path: pathlib.Path,
) -> None:
    phone = Phone().invite().expect_reinvite("sendonly", timeout_ms=25000).pause(500).bye()
    with faulty_setup(tmp_path) as (daemon, proxy, server_url):
        moderator = direct(daemon, server_url)
        with phone_call(daemon, phone, tmp_path, timeout=40):
            attendee = moderator.phone()["attendeeId"]
            proxy.sockets_blocked = True
            proxy.drop_sockets()
            daemon.wait_log("conference disconnected")
            # The event of this mute is lost with the socket; only a resync can find it.
            moderator.mute(attendee)
            time.sleep(0.5)
            assert not daemon.log_has("mute signalled")
            proxy.sockets_blocked = False
            daemon.wait_log("mute signalled", timeout=25)


def test_a_phone_that_hangs_up_while_the_server_fails_leaves_the_meeting_once_it_is_back(
    tmp_path: pathlib.Path,
) -> None:
    phone = Phone().invite().pause(1500).bye()  # the server fails meanwhile
    with faulty_setup(tmp_path) as (daemon, proxy, server_url):
        moderator = direct(daemon, server_url)
        with phone_call(daemon, phone, tmp_path):
            attendee = moderator.phone()["attendeeId"]
            proxy.mode = "error"
        daemon.wait_log("leave deferred")
        assert moderator.entry(attendee) is not None  # a ghost, for now
        proxy.mode = "pass"
        moderator.wait_for(lambda _: moderator.entry(attendee) is None, what="the phone gone")
