"""The bridge against a conference server in another process (``spaces-bridge server``), including
that server restarting while a phone is in a meeting."""

from __future__ import annotations

import pathlib

import pytest

from bridge import __version__
from tests.interop.harness import free_port, running_daemon
from tests.interop.meeting import Moderator, phone_call
from tests.interop.remote import BRIDGE_TOKEN, TOKEN_ENV, conference_server, remote_config
from tests.interop.scenario import Phone
from tests.interop.test_ops import get, sample

pytestmark = pytest.mark.interop


def test_remote_server_mute_then_restart_without_state_hangs_up(tmp_path: pathlib.Path) -> None:
    port = free_port()
    (tmp_path / "bridge").mkdir()
    remote = f'\n[conference]\nurl = "http://127.0.0.1:{port}"\ntoken_env = "SPACES_BRIDGE_TOKEN"\n'
    with (
        conference_server(tmp_path, port) as first,
        running_daemon(
            tmp_path / "bridge", extra_config=remote, env={"SPACES_BRIDGE_TOKEN": BRIDGE_TOKEN}
        ) as daemon,
    ):
        phone = Phone().invite().expect_reinvite("sendonly").expect_bye(timeout_ms=20000)
        with phone_call(daemon, phone, tmp_path):
            moderator = Moderator(daemon)
            moderator.mute(moderator.phone()["attendeeId"])
            daemon.wait_log("mute signalled")
            first.terminate()
            assert first.wait(10) == 0
            daemon.wait_log("conference disconnected")
            # A new server process knows nothing of the meeting: the bridge resyncs, finds the
            # meeting gone and hangs up rather than leave the phone in a meeting that is no more.
            with conference_server(tmp_path, port):
                daemon.wait_log("call ended", "reason=meeting gone", timeout=20)


def test_keys_get_503_while_the_server_is_down(tmp_path: pathlib.Path) -> None:
    port = free_port()
    (tmp_path / "bridge").mkdir()
    remote = f'\n[conference]\nurl = "http://127.0.0.1:{port}"\ntoken_env = "SPACES_BRIDGE_TOKEN"\n'
    with running_daemon(
        tmp_path / "bridge", extra_config=remote, env={"SPACES_BRIDGE_TOKEN": BRIDGE_TOKEN}
    ) as daemon:
        phone = (
            Phone()
            .invite()
            .pause(2500)  # the server stops meanwhile
            .info("application/dtmf-relay", "Signal=*\nDuration=100")
            .info("application/dtmf-relay", "Signal=6\nDuration=100", status=503)
            .bye()
        )
        with conference_server(tmp_path, port) as server, phone_call(daemon, phone, tmp_path):
            Moderator(daemon).phone()
            server.terminate()
            assert server.wait(10) == 0
        daemon.wait_log("conference unreachable")


def test_a_remote_server_without_dial_in_ids_leaves_the_menu_number_unavailable(
    tmp_path: pathlib.Path,
) -> None:
    """The server's spaces have no dial-in ID: the daemon says at start that its menu number
    answers 404, and it does; a space's own URI still joins."""
    port = free_port()
    (tmp_path / "bridge").mkdir()
    remote = remote_config(f"http://127.0.0.1:{port}")
    with (
        conference_server(tmp_path, port, tables="\n[media_server]\nenabled = false\n"),
        running_daemon(tmp_path / "bridge", extra_config=remote, env=TOKEN_ENV) as daemon,
    ):
        daemon.wait_log("dial-in unavailable", r"call=sip:join@")
        with phone_call(daemon, Phone().refused(404), tmp_path, service="join"):
            pass
        (tmp_path / "direct").mkdir()
        with phone_call(daemon, Phone().invite().bye(), tmp_path / "direct"):
            pass


def test_the_server_alone_serves_metrics_health_and_readiness(tmp_path: pathlib.Path) -> None:
    """``spaces-bridge server`` with an ``[ops]`` table: what an operator of the shared server
    of a scale-out (docs/scale-out.md) scrapes and probes: its meetings, attendees and mixer."""
    port, ops_port = free_port(), free_port()
    (tmp_path / "bridge").mkdir()
    ops = f"http://127.0.0.1:{ops_port}"
    with (
        conference_server(tmp_path, port, tables=f'\n[ops]\nlisten = "127.0.0.1:{ops_port}"\n'),
        running_daemon(
            tmp_path / "bridge",
            extra_config=remote_config(f"http://127.0.0.1:{port}"),
            env=TOKEN_ENV,
        ) as daemon,
    ):
        assert get(ops + "/healthz") == (200, '{"status": "ok"}')
        assert get(ops + "/readyz") == (200, '{"status": "ready"}')
        idle = get(ops + "/metrics")[1]
        assert sample(idle, "spaces_bridge_build_info", version=__version__) == 1
        assert sample(idle, "spaces_bridge_mixer_up") == 1
        assert sample(idle, "spaces_bridge_server_attendees") == 0
        assert "spaces_bridge_sip_" not in idle  # the bridge's own metrics are not the server's
        with phone_call(daemon, Phone().invite().pause(1500).bye(), tmp_path):
            Moderator(daemon).phone()
            busy = get(ops + "/metrics")[1]
            assert sample(busy, "spaces_bridge_server_meetings_active") == 1
            assert sample(busy, "spaces_bridge_server_attendees") == 1
            assert sample(busy, "spaces_bridge_server_lobby_waiting") == 0
        daemon.wait_log("call ended")
        assert sample(get(ops + "/metrics")[1], "spaces_bridge_server_attendees") == 0
