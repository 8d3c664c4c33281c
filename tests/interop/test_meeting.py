"""Phones in a meeting: real sipp phones, the real daemon and its embedded server, and a moderator
acting through the REST API (docs/behaviour.md, from Legacy and modern endpoints to Meeting
lifecycle)."""

from __future__ import annotations

import concurrent.futures
import pathlib
from collections.abc import Iterator

import pytest

from tests.interop.harness import (
    SERVER,
    Daemon,
    explain,
    free_port,
    probe,
    running_daemon,
    sipp,
)
from tests.interop.meeting import Moderator, phone_call
from tests.interop.scenario import Phone

pytestmark = pytest.mark.interop

MODERN = "spacesVersion: 1.1"
INFO_ONLY = '\n[calls]\nmodern_signalling = ["info"]\nlobby_timeout_seconds = 2\n'


@pytest.fixture
def daemon(tmp_path: pathlib.Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path, extra_config=INFO_ONLY) as d:
        yield d


def test_admin_mute_and_unmute_reach_a_legacy_phone_as_reoffers(
    daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    phone = Phone().invite().expect_reinvite("sendonly").expect_reinvite("sendrecv").bye()
    with phone_call(daemon, phone, tmp_path):
        moderator = Moderator(daemon)
        attendee = moderator.phone()["attendeeId"]
        moderator.mute(attendee)
        daemon.wait_log("mute signalled")
        moderator.mute(attendee, audio=True)
    daemon.wait_log("call ended")


@pytest.mark.parametrize(
    "recv_info",
    [None, "spaces-bridge", "foo, Spaces-Bridge", ""],
    ids=["none", "ours", "list", "empty"],
)
def test_admin_mute_reaches_a_modern_phone_as_an_info_event(
    daemon: Daemon, tmp_path: pathlib.Path, recv_info: str | None
) -> None:
    """RFC 6086: the event names our package in Info-Package only if the phone's Recv-Info
    listed it; otherwise it goes as a legacy INFO usage, without the header."""
    listed = recv_info is not None and "spaces-bridge" in recv_info.lower()
    phone = (
        Phone(recv_info=recv_info)
        .invite()
        .expect_info("audio.:false.*tracksstatus.change", package=listed)
        .bye()
    )
    with phone_call(daemon, phone, tmp_path, version_header=MODERN):
        moderator = Moderator(daemon)
        moderator.mute(moderator.phone()["attendeeId"])


def test_an_info_of_another_package_gets_469_naming_ours(
    daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    phone = (
        Phone(recv_info="spaces-bridge")
        .invite()
        .info(
            "application/vnd.spaces.bridge+json",
            '{"type":"raisehand","id":"r1"}',
            status=469,
            header="Recv-Info: *spaces-bridge",
            lines=("Info-Package: conference-control",),
        )
        .info(
            "application/vnd.spaces.bridge+json",
            '{"type":"raisehand","id":"r2"}',
            lines=("Info-Package: spaces-bridge",),
        )
        .expect_info("raised.*hand", package=True)  # the second was applied: its event follows
        .bye()
    )
    with phone_call(daemon, phone, tmp_path, version_header=MODERN):
        pass


def test_mute_on_entry_is_in_the_first_answer(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    with phone_call(daemon, Phone().invite(answer="sendonly").bye(), tmp_path, service="entry"):
        pass


def test_legacy_unmute_under_prevent_unmuting_raises_the_hand_and_acceptance_unmutes(
    daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    phone = (
        Phone()
        .invite(answer="sendonly")  # prevent unmuting: members start muted
        .reinvite("sendrecv", answer="sendonly")  # the phone unmutes: refused, still muted
        .expect_reinvite("sendrecv")  # the moderator accepted the hand
        .pause(1500)  # while the test reads the server's state
        .bye()
    )
    with phone_call(daemon, phone, tmp_path, service="strict"):
        moderator = Moderator(daemon, "strict")
        attendee = moderator.phone()["attendeeId"]
        moderator.wait_for(lambda _: moderator.entry(attendee)["hand"] == "raised")  # type: ignore[index]
        moderator.call(
            "POST",
            f"{moderator.meeting}/attendees/raisedhands/accept",
            {
                "grantedPermissions": ["PERMISSION_UNMUTE"],
                "attendeeId": attendee,
                "attendeeType": "phone",
            },
        )
        # The bridge unmuted on the server first; the phone hears of it afterwards.
        moderator.wait_for(lambda _: moderator.entry(attendee)["mediaState"]["audio"])  # type: ignore[index]


def test_star6_under_prevent_unmuting_raises_the_hand(
    daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    phone = (
        Phone()
        .invite(answer="sendonly")
        .info("application/dtmf-relay", "Signal=*\nDuration=100")
        .info("application/dtmf-relay", "Signal=6\nDuration=100")
        .pause(500)
        .bye()
    )
    with phone_call(daemon, phone, tmp_path, service="strict"):
        moderator = Moderator(daemon, "strict")
        attendee = moderator.phone()["attendeeId"]
        moderator.wait_for(lambda _: moderator.entry(attendee)["hand"] == "raised")  # type: ignore[index]
        assert moderator.entry(attendee)["mediaState"]["audio"] is False  # type: ignore[index]


def test_mute_all_spares_the_excluded_phone(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    muted = Phone(name="Muted").invite().expect_reinvite("sendonly").bye()
    spared = Phone(name="Spared").invite().pause(3000).bye()  # any re-INVITE would fail it
    with (
        phone_call(daemon, muted, tmp_path / "a" if _mkdir(tmp_path / "a") else tmp_path),
        phone_call(daemon, spared, tmp_path / "b" if _mkdir(tmp_path / "b") else tmp_path),
    ):
        moderator = Moderator(daemon)
        moderator.phone("Muted")
        keep = moderator.phone("Spared")["attendeeId"]
        moderator.call("POST", f"{moderator.meeting}/muteall", {"exclusionList": [keep]})
        assert moderator.entry(keep)["mediaState"]["audio"] is True  # type: ignore[index]


def test_lobby_allow(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    with phone_call(daemon, Phone().invite(timeout_ms=15000).bye(), tmp_path, service="lobby"):
        moderator = Moderator(daemon, "lobby")
        waiting = moderator.phone()
        daemon.wait_log("caller waiting")
        moderator.decide(waiting["attendeeId"], "allow")
    daemon.wait_log("caller admitted")


def test_lobby_deny_is_603_with_a_reason(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    phone = Phone().refused(603, header="Reason: SIP;cause=603")
    with phone_call(daemon, phone, tmp_path, service="lobby"):
        moderator = Moderator(daemon, "lobby")
        waiting = moderator.phone()
        daemon.wait_log("caller waiting")
        moderator.decide(waiting["attendeeId"], "deny")


def test_lobby_timeout_is_480_and_withdraws_the_request(
    daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    with phone_call(daemon, Phone().refused(480), tmp_path, service="lobby"):
        pass
    moderator = Moderator(daemon, "lobby")
    moderator.wait_for(lambda d: not d["lobby"] and not d["attendees"], what="an empty lobby")


def test_a_full_lobby_refuses_the_next_caller_with_480_and_retry_after(
    tmp_path: pathlib.Path,
) -> None:
    small = "\n[calls]\nlobby_timeout_seconds = 6\n[limits]\nlobby_per_space = 1\n"
    first = Phone().refused(480)  # at the lobby timeout
    with (
        running_daemon(tmp_path, extra_config=small) as daemon,
        phone_call(daemon, first, tmp_path, name="first", service="lobby"),
    ):
        daemon.wait_log("caller waiting")
        second = Phone().refused(480, header="Retry-After: 30")
        with phone_call(daemon, second, tmp_path, name="second", service="lobby"):
            pass
        daemon.wait_log("callers already wait in the lobby")
        moderator = Moderator(daemon, "lobby")
        # The refused caller left the meeting; the first still waits.
        moderator.wait_for(
            lambda d: len(d["lobby"]) == len(d["attendees"]) == 1, what="one caller waiting"
        )


def test_a_full_meeting_refuses_the_next_caller_with_486_and_says_why(
    tmp_path: pathlib.Path,
) -> None:
    one_seat = SERVER.replace("port = 0", "port = 0\nmeeting_capacity = 1")
    with (
        running_daemon(tmp_path, extra_config=one_seat) as daemon,
        phone_call(daemon, Phone().invite().pause(3000).bye(), tmp_path, name="seated"),
    ):
        Moderator(daemon).phone()
        turned_away = Phone("Desk Phone 2").refused(
            486, header="Reason: SIP;cause=486;text=.Meeting full."
        )
        with phone_call(daemon, turned_away, tmp_path, name="turned-away"):
            pass
        daemon.wait_log("call refused", "status=486")


def test_guest_refused_by_policy_is_603(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    with phone_call(daemon, Phone().refused(603), tmp_path, service="closed"):
        pass


def test_unknown_space_is_404(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    with phone_call(daemon, Phone().refused(404), tmp_path, service="nowhere"):
        pass


def test_meeting_end_hangs_up(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    with phone_call(daemon, Phone().invite().expect_bye(), tmp_path):
        moderator = Moderator(daemon)
        moderator.phone()
        moderator.call("DELETE", moderator.meeting)
    daemon.wait_log("call ended", "reason=meeting ended")


def test_modern_json_mute_is_answered_then_signalled(
    daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    phone = (
        Phone()
        .invite()
        .info("application/vnd.spaces.bridge+json", '{"type":"mediastate","id":"r1","audio":false}')
        .pause(300)
        .bye()
    )
    with phone_call(daemon, phone, tmp_path, version_header=MODERN):
        moderator = Moderator(daemon)
        attendee = moderator.phone()["attendeeId"]
        moderator.wait_for(lambda _: not moderator.entry(attendee)["mediaState"]["audio"])  # type: ignore[index]


def _mkdir(path: pathlib.Path) -> bool:
    path.mkdir(exist_ok=True)
    return True


def test_hold_mutes_in_the_meeting_and_resume_restores(
    daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    phone = (
        Phone()
        .invite()
        .reinvite("sendonly", answer="recvonly")  # hold
        .pause(1500)
        .reinvite("sendrecv", answer="sendrecv")  # resume
        .pause(1500)
        .bye()
    )
    with phone_call(daemon, phone, tmp_path):
        moderator = Moderator(daemon)
        attendee = moderator.phone()["attendeeId"]

        def state() -> tuple[bool, bool]:
            entry = moderator.entry(attendee) or {"held": None, "mediaState": {"audio": None}}
            return entry["held"], entry["mediaState"]["audio"]

        # No hold music in the meeting: muted while held, then the state before the hold again.
        moderator.wait_for(lambda _: state() == (True, False), what="held and muted")
        moderator.wait_for(lambda _: state() == (False, True), what="resumed and unmuted")


def test_conference_unreachable_keys_get_503_and_new_calls_503(tmp_path: pathlib.Path) -> None:
    port = free_port()
    remote = f'\n[conference]\nurl = "http://127.0.0.1:{port}"\ntoken_env = "BRIDGE_TOKEN"\n'
    refused = Phone().refused(503, header="Retry-After: [0-9]+")
    # Nothing listens on the conference port: the bridge cannot join anyone.
    with (
        running_daemon(tmp_path, extra_config=remote, env={"BRIDGE_TOKEN": "t" * 20}) as daemon,
        phone_call(daemon, refused, tmp_path),
    ):
        pass


def test_conference_subscription_shows_the_roster_and_mutes(
    daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "phone").mkdir()
    phone = Phone().invite().expect_reinvite("sendonly").pause(2000).bye()
    with phone_call(daemon, phone, tmp_path / "phone"):
        moderator = Moderator(daemon)
        attendee = moderator.phone()["attendeeId"]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            watcher = pool.submit(
                sipp, daemon, "subscribe_conference.xml", workdir=tmp_path, timeout=20
            )
            daemon.wait_log("conference subscribed")
            moderator.mute(attendee)
            result = watcher.result(60)
        assert result.returncode == 0, explain(result, daemon, tmp_path)


@pytest.mark.parametrize(
    ("headers", "status"),
    [("Event: presence", 489), ("Event: conference\nExpires: 5", 423)],
    ids=["other-event", "too-brief"],
)
def test_bad_subscriptions_are_refused(
    daemon: Daemon, tmp_path: pathlib.Path, headers: str, status: int
) -> None:
    answer = probe(daemon.host, daemon.port, "SUBSCRIBE", headers, timeout=3, user="demo")
    assert answer is not None and answer.startswith(f"SIP/2.0 {status} ".encode()), answer


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_lobby_answer_variant(tmp_path: pathlib.Path, decision: str) -> None:
    """lobby_mode = "answer": 200 at once with inactive media; admission re-offers (sendrecv),
    a denial hangs up with a Reason."""
    with running_daemon(tmp_path, extra_config='\n[calls]\nlobby_mode = "answer"\n') as daemon:
        phone = Phone().invite(answer="inactive")
        if decision == "allow":
            phone.expect_reinvite("sendrecv").pause(300).bye()
        else:
            phone.expect_bye(check="Reason: SIP;cause=603")
        with phone_call(daemon, phone, tmp_path, service="lobby"):
            moderator = Moderator(daemon, "lobby")
            waiting = moderator.phone()
            daemon.wait_log("caller waiting")
            moderator.decide(waiting["attendeeId"], decision)
        if decision == "deny":
            daemon.wait_log("call ended", "reason=denied by a moderator")


def test_user_agent_patterns_choose_the_signalling(tmp_path: pathlib.Path) -> None:
    """A legacy phone (no spacesVersion) whose User-Agent matches gets INFO events, not re-INVITEs."""
    agents = '\n[calls]\nuser_agents = [{ match = "acme-desk*", signalling = ["info"] }]\n'
    with running_daemon(tmp_path, extra_config=agents) as daemon:
        phone = Phone().invite().expect_info("audio.:false.*tracksstatus.change").bye()
        with phone_call(daemon, phone, tmp_path, version_header="User-Agent: ACME-Desk/2.0"):
            moderator = Moderator(daemon)
            moderator.mute(moderator.phone()["attendeeId"])
