"""The operations endpoint of a running daemon: metrics after real sipp calls, health and readiness."""

from __future__ import annotations

import json
import pathlib
import re
import signal
import time
import urllib.error
import urllib.request

import pytest

from tests.interop.harness import explain, free_port, running_daemon, sipp
from tests.interop.meeting import Moderator, phone_call
from tests.interop.scenario import Phone

pytestmark = pytest.mark.interop


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name:
            got = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if got == wanted:
                return float(match[3])
    return 0.0


def test_metrics_after_real_calls_and_health(tmp_path: pathlib.Path) -> None:
    with running_daemon(tmp_path) as daemon:
        status, body = get(daemon.ops_url + "/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, body = get(daemon.ops_url + "/readyz")
        assert status == 200, body

        result = sipp(daemon, "call.xml", workdir=tmp_path, calls=3, rate=10)
        assert result.returncode == 0, explain(result, daemon, tmp_path)
        muted = Phone().invite().expect_reinvite("sendonly").pause(200).bye()
        (tmp_path / "muted").mkdir()
        with phone_call(daemon, muted, tmp_path / "muted"):
            moderator = Moderator(daemon)
            attendee = moderator.phone()["attendeeId"]
            _, during = get(daemon.ops_url + "/metrics")
            # An event that needs no signalling (mute on entry concerns later callers) must not
            # start the clock: the relay is timed from the mute only.
            moderator.call("PATCH", "/api/spaces/demo/settings", {"muteOnEntry": True})
            time.sleep(1)
            moderator.mute(attendee)
        daemon.wait_log("call ended")

        assert sample(during, "spaces_bridge_dialogs_active", version="legacy") == 1
        status, text = get(daemon.ops_url + "/metrics")
        assert status == 200
        assert (
            sample(text, "spaces_bridge_sip_requests_total", direction="in", method="INVITE") == 4
        )
        assert sample(text, "spaces_bridge_sip_requests_total", direction="in", method="BYE") == 4
        assert (
            sample(text, "spaces_bridge_sip_requests_total", direction="out", method="INVITE") == 1
        )
        assert sample(text, "spaces_bridge_sip_responses_total", direction="out", code="200") >= 8
        assert sample(text, "spaces_bridge_calls_total", outcome="completed") == 4
        assert sample(text, "spaces_bridge_dialogs_active", version="legacy") == 0
        assert sample(text, "spaces_bridge_conference_socket_connected") == 1
        assert sample(text, "spaces_bridge_mute_relay_conference_to_phone_seconds_count") == 1
        assert sample(text, "spaces_bridge_mute_relay_conference_to_phone_seconds_sum") < 0.5
        assert (
            sample(
                text,
                "spaces_bridge_conference_request_seconds_count",
                route="GET /api/spaces/:spaceId/activemeeting",
            )
            == 4
        )
        assert sample(text, "spaces_bridge_build_info", version="0.1.0") == 1


def test_not_ready_without_the_conference_server(tmp_path: pathlib.Path) -> None:
    port = free_port()
    remote = f'\n[conference]\nurl = "http://127.0.0.1:{port}"\ntoken_env = "T"\n'
    with running_daemon(tmp_path, extra_config=remote, env={"T": "t" * 20}) as daemon:
        status, body = get(daemon.ops_url + "/readyz")
        assert status == 503
        assert "event stream is not connected" in json.loads(body)["reasons"][0]
        assert get(daemon.ops_url + "/healthz")[0] == 200


def test_sighup_reloads_the_dialplan_and_refuses_a_bad_file(tmp_path: pathlib.Path) -> None:
    with running_daemon(tmp_path) as daemon:
        config = tmp_path / "bridge.toml"
        good = config.read_text()
        with phone_call(daemon, Phone().refused(404), tmp_path, service="sales"):
            pass
        config.write_text(good + '\n[dialplan]\nsales = "demo"\n')
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("configuration reloaded", "needs_restart=\\[\\]")
        (tmp_path / "two").mkdir()
        with phone_call(daemon, Phone().invite().bye(), tmp_path / "two", service="sales"):
            pass
        config.write_text(good + "\n[calls]\nmute_key = 5\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("reload refused", "calls.mute_key")
        config.write_text(good.replace("grace_seconds = 0.0", "grace_seconds = 1.0"))
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("configuration reloaded", "needs_restart=\\[drain\\]")
        # Who may call is read at start: a change is named, not silently ignored.
        config.write_text(good + '\n[auth]\nallow = ["127.0.0.0/8"]\n')
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("configuration reloaded", "needs_restart=\\[auth\\]")
        assert get(daemon.ops_url + "/healthz")[0] == 200
