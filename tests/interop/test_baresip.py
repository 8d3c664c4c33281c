"""A real softphone (baresip) against the real daemon: call, hold, resume, hang up, and shutdown."""

from __future__ import annotations

import pathlib
import re
import signal

import pytest

from tests.interop.baresip import call_key, establish, log_has, running_baresip, wait_for_log
from tests.interop.harness import LOOPBACK, running_daemon

pytestmark = pytest.mark.interop

TRANSPORTS = [pytest.param("udp", id="udp"), pytest.param("tcp", id="tcp")]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_call_hold_resume_hangup(tmp_path: pathlib.Path, transport: str) -> None:
    with running_daemon(tmp_path) as daemon, running_baresip(tmp_path) as phone:
        uri = f"sip:demo@{LOOPBACK}:{daemon.port};transport={transport}"
        call_id = establish(daemon, phone, uri)
        key = call_key(call_id)

        # baresip holds with a re-INVITE offering a=sendonly: the bridge must answer recvonly,
        # and answer sendrecv again when the resume re-INVITE offers sendrecv (SPEC §2)
        phone.hold()
        assert phone.wait_event("CALL_REMOTE_SDP")["param"] == "answer"
        wait_for_log(daemon, phone, r"\bhold\b", key)
        assert phone.invite_answers() == ["sendrecv", "recvonly"], phone.explain()

        phone.resume()
        assert phone.wait_event("CALL_REMOTE_SDP")["param"] == "answer"
        wait_for_log(daemon, phone, r"\bresume\b", key)
        assert phone.invite_answers() == ["sendrecv", "recvonly", "sendrecv"], phone.explain()

        phone.hangup()
        closed = phone.wait_event("CALL_CLOSED")
        assert closed["id"] == call_id
        wait_for_log(daemon, phone, r"\bcall ended\b", key)
    # running_daemon has checked that SIGTERM made the daemon exit 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sigterm_sends_bye_to_an_established_call(tmp_path: pathlib.Path, transport: str) -> None:
    with running_daemon(tmp_path) as daemon, running_baresip(tmp_path) as phone:
        call_id = establish(
            daemon, phone, f"sip:demo@{LOOPBACK}:{daemon.port};transport={transport}"
        )

        daemon.signal(signal.SIGTERM)
        closed = phone.wait_event("CALL_CLOSED", timeout=10)
        assert closed["id"] == call_id
        # a local hangup would say "Connection reset by user"; this close came from the bridge's BYE
        assert "by user" not in str(closed["param"]), closed
        assert re.search(r"\r?\nBYE sip:\S+ SIP/2\.0\r?\n", phone.log()), phone.explain()

        assert daemon.process is not None
        assert daemon.process.wait(15) == 0, daemon.log()
        assert log_has(daemon, r"\bcall ended\b", call_key(call_id)), daemon.log()
