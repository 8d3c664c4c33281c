"""A real softphone (baresip) against the real daemon: call, hold, resume, hang up, and shutdown."""

from __future__ import annotations

import pathlib
import re
import signal

import pytest

from tests.interop.baresip import (
    TRACE_BLOCK,
    Baresip,
    call_key,
    establish,
    log_has,
    running_baresip,
    wait_for,
    wait_for_log,
)
from tests.interop.harness import LOOPBACK, running_daemon
from tests.interop.meeting import Moderator

pytestmark = pytest.mark.interop

TRANSPORTS = [pytest.param("udp", id="udp"), pytest.param("tcp", id="tcp")]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_call_hold_resume_hangup(tmp_path: pathlib.Path, transport: str) -> None:
    with running_daemon(tmp_path) as daemon, running_baresip(tmp_path) as phone:
        uri = f"sip:demo@{LOOPBACK}:{daemon.port};transport={transport}"
        call_id = establish(daemon, phone, uri)
        key = call_key(call_id)

        # baresip holds with a re-INVITE offering a=sendonly: the bridge must answer recvonly,
        # and answer sendrecv again when the resume re-INVITE offers sendrecv (docs/behaviour.md,
        # SIP surface)
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


def test_admin_mute_and_unmute_reach_baresip(tmp_path: pathlib.Path) -> None:
    with running_daemon(tmp_path) as daemon, running_baresip(tmp_path) as phone:
        establish(daemon, phone, f"sip:demo@{LOOPBACK}:{daemon.port}")
        moderator = Moderator(daemon)
        attendee = moderator.phone(name=None)["attendeeId"]
        moderator.mute(attendee)
        assert phone.wait_event("CALL_REMOTE_SDP")["param"] == "offer"
        wait_for(lambda: "sendonly" in received_offers(phone), 5, phone.explain)
        moderator.mute(attendee, audio=True)
        assert phone.wait_event("CALL_REMOTE_SDP")["param"] == "offer"
        wait_for(lambda: received_offers(phone)[-1:] == ["sendrecv"], 5, phone.explain)
        assert received_offers(phone) == ["sendonly", "sendrecv"], phone.explain()
        phone.hangup()
        wait_for_log(daemon, phone, r"\bcall ended\b")


def received_offers(phone: Baresip) -> list[str]:
    """Audio directions of the bridge's re-INVITEs to baresip, in order (baresip's own INVITE
    goes to sip:demo@)."""
    out = []
    for block in TRACE_BLOCK.findall(phone.log()):
        if block.startswith("INVITE ") and not block.startswith("INVITE sip:demo@"):
            found = re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", block, re.M)
            out.append(found[-1] if found else "sendrecv")
    return out
