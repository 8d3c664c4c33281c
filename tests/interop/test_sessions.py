"""A bridge node that dies: the conference server reports its phones as left within its session
timeout (docs/conference-api.md, Sessions), while a node whose connection only blips keeps them.

Real processes on loopback: ``spaces-bridge server`` with a short ``session_timeout_seconds``, a
``spaces-bridge run`` daemon in remote mode (through :class:`~tests.interop.remote.FaultProxy`
where the network must fail), and a Python SIP phone. The moderator reads the server's roster
directly, as a console would.
"""

from __future__ import annotations

import pathlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.interop.harness import Daemon, free_port, running_daemon
from tests.interop.meeting import Moderator
from tests.interop.remote import TOKEN_ENV, FaultProxy, conference_server, remote_config
from tests.interop.rtpphone import SipPhone

pytestmark = pytest.mark.interop

TIMEOUT = 2.0
"""The server's ``session_timeout_seconds`` here."""
MARGIN = 3.0
"""What the server may take beyond it: noticing the closed socket, one timer, a loaded host."""


def direct(daemon: Daemon, server_url: str) -> Moderator:
    """The moderator on the server itself (not through the daemon's proxy)."""
    del daemon
    return Moderator.at(server_url)


def server_log(workdir: pathlib.Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(workdir.glob("server-*.log")))


@contextmanager
def server(workdir: pathlib.Path) -> Iterator[str]:
    port = free_port()
    with conference_server(workdir, port, extra=f"session_timeout_seconds = {TIMEOUT}"):
        yield f"http://127.0.0.1:{port}"


def test_a_killed_node_s_phone_leaves_the_roster_within_the_session_timeout(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "bridge").mkdir()
    with server(tmp_path) as url:
        daemon = Daemon(
            tmp_path / "bridge", port=free_port(), extra_config=remote_config(url), env=TOKEN_ENV
        )
        try:
            daemon.start()
            moderator = direct(daemon, url)
            # A console's attendee: joined without a session, it must stay whatever nodes do.
            console = moderator.call(
                "POST",
                f"{moderator.meeting}/attendees",
                {"attendeeType": "web", "displayName": "Console"},
            )["attendeeId"]
            with SipPhone((daemon.host, daemon.port), name="Doomed") as phone:
                assert phone.invite(free_port(both=False)).status == 200
                attendee = moderator.phone("Doomed")["attendeeId"]
                assert daemon.process is not None
                daemon.process.kill()  # SIGKILL, this daemon's own PID: no BYE, no DELETE
                daemon.process.wait(10)
                killed = time.monotonic()
                time.sleep(TIMEOUT / 2)
                assert moderator.entry(attendee) is not None, "left before the timeout"
                moderator.wait_for(
                    lambda _: moderator.entry(attendee) is None,
                    TIMEOUT + MARGIN,
                    "the killed node's phone gone",
                )
                elapsed = time.monotonic() - killed
                assert TIMEOUT <= elapsed <= TIMEOUT + MARGIN, elapsed
            assert moderator.entry(console) is not None
            log = server_log(tmp_path)
            assert re.search(r"session expired.*attendees=1", log), log
        finally:
            if daemon.process is not None and daemon.process.poll() is None:
                daemon.process.kill()
                daemon.process.wait(10)


@contextmanager
def proxied(workdir: pathlib.Path) -> Iterator[tuple[Daemon, FaultProxy, Moderator]]:
    (workdir / "bridge").mkdir()
    with (
        server(workdir) as url,
        FaultProxy(url) as proxy,
        running_daemon(
            workdir / "bridge", extra_config=remote_config(proxy.url), env=TOKEN_ENV
        ) as daemon,
    ):
        yield daemon, proxy, direct(daemon, url)


def connections(daemon: Daemon) -> int:
    return daemon.log().count("conference connected")


def test_a_node_whose_socket_blips_keeps_its_phone(tmp_path: pathlib.Path) -> None:
    with (
        proxied(tmp_path) as (daemon, proxy, moderator),
        SipPhone((daemon.host, daemon.port), name="Steady") as phone,
    ):
        assert phone.invite(free_port(both=False)).status == 200
        attendee = moderator.phone("Steady")["attendeeId"]
        for _ in range(2):
            before = connections(daemon)
            proxy.drop_sockets()  # the node's only socket: its session has none now
            deadline = time.monotonic() + TIMEOUT
            while connections(daemon) == before:
                assert time.monotonic() < deadline, daemon.log()[-3000:]
                time.sleep(0.02)
        time.sleep(TIMEOUT + 1.0)
        assert moderator.entry(attendee) is not None, server_log(tmp_path)
        assert phone.byes == 0
        assert "session expired" not in server_log(tmp_path)
        phone.bye()
        moderator.wait_for(lambda _: moderator.entry(attendee) is None, what="the phone gone")


def test_a_node_cut_off_longer_than_the_timeout_loses_its_phone_and_hangs_it_up_on_return(
    tmp_path: pathlib.Path,
) -> None:
    with (
        proxied(tmp_path) as (daemon, proxy, moderator),
        SipPhone((daemon.host, daemon.port), name="Cut Off") as phone,
    ):
        assert phone.invite(free_port(both=False)).status == 200
        attendee = moderator.phone("Cut Off")["attendeeId"]
        proxy.sockets_blocked = True
        proxy.drop_sockets()
        moderator.wait_for(
            lambda _: moderator.entry(attendee) is None, TIMEOUT + MARGIN, "the phone gone"
        )
        # Back in touch, the node re-reads its calls and ends the one the server dropped,
        # rather than keep a phone in a meeting it is no longer part of.
        proxy.sockets_blocked = False
        daemon.wait_log("call ended", "reason=gone from the meeting", timeout=20)
        deadline = time.monotonic() + 5
        while phone.byes == 0:
            assert time.monotonic() < deadline, "no BYE"
            time.sleep(0.02)
