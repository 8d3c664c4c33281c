"""Digest authentication and source filtering against real sipp callers (docs/behaviour.md, SIP
surface)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from tests.interop.harness import Daemon, explain, probe, running_daemon, sipp
from tests.interop.meeting import Moderator, phone_call
from tests.interop.scenario import Phone

pytestmark = pytest.mark.interop

# Debian's sipp (3.6) answers only the first challenge and knows only MD5: offer MD5 first here.
USERS = """
[auth]
realm = "bridge.test"
algorithms = ["MD5", "SHA-256"]
users = [
  { user = "1001", password_env = "PW_MOD", role = "moderator" },
  { user = "1002", password_env = "PW_MEMBER" },
  { user = "1003", password_env = "PW_GUEST", role = "guest" },
]
"""
ENV = {"PW_MOD": "moderator-secret", "PW_MEMBER": "member-secret", "PW_GUEST": "guest-secret"}
CREDENTIALS = {"1001": "moderator-secret", "1002": "member-secret", "1003": "guest-secret"}


def authenticated_call(
    daemon: Daemon,
    workdir: pathlib.Path,
    user: str,
    password: str,
    *,
    service: str = "demo",
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    extra = ("-key", "user", user, "-au", user, "-ap", password)
    return sipp(
        daemon, "call_auth.xml", workdir=workdir, service=service, timeout=timeout, extra=extra
    )


def test_a_moderator_phone_authenticates_and_skips_the_lobby(tmp_path: pathlib.Path) -> None:
    with running_daemon(tmp_path, extra_config=USERS, env=ENV) as daemon:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(
                authenticated_call, daemon, tmp_path, "1001", "moderator-secret", service="lobby"
            )
            moderator = Moderator(daemon, "lobby")
            entry = moderator.phone("Desk 1001")
            result = call.result(60)
        assert result.returncode == 0, explain(result, daemon, tmp_path)
        assert entry["role"] == "moderator" and entry["admitted"] and not entry["guest"]


def test_a_member_is_admitted_as_a_member(tmp_path: pathlib.Path) -> None:
    with running_daemon(tmp_path, extra_config=USERS, env=ENV) as daemon:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(authenticated_call, daemon, tmp_path, "1002", "member-secret")
            entry = Moderator(daemon).phone("Desk 1002")
            result = call.result(60)
        assert result.returncode == 0, explain(result, daemon, tmp_path)
        assert entry["role"] == "member" and not entry["guest"]


def test_no_or_wrong_credentials_get_challenges(tmp_path: pathlib.Path) -> None:
    with running_daemon(tmp_path, extra_config=USERS, env=ENV) as daemon:
        challenged = Phone().refused(401, header='WWW-Authenticate: Digest realm="bridge.test"')
        with phone_call(daemon, challenged, tmp_path):
            pass
        (tmp_path / "wrong").mkdir()
        wrong = authenticated_call(daemon, tmp_path / "wrong", "1001", "guess", timeout=10)
        assert wrong.returncode != 0  # challenged again: sipp gives up
        assert daemon.log_has("message rejected") is False
        assert not daemon.log_has("call offered")


def test_denied_sources_get_403(tmp_path: pathlib.Path) -> None:
    deny = '\n[auth]\ndeny = ["127.0.0.0/8"]\n'
    with running_daemon(tmp_path, extra_config=deny) as daemon:
        # The harness's readiness probe is an OPTIONS from loopback: it must see 403, not silence.
        answer = probe(daemon.host, daemon.port, "INVITE", "", timeout=3, user="demo")
        assert answer is not None and answer.startswith(b"SIP/2.0 403 Source Not Allowed")


# -- *7 (mute all) from real phones: only an authenticated moderator's works ----------------------
# (docs/behaviour.md, SIP surface and Phone to server)

#: An INVITE in the Phone builder's shape (same From, so its later requests match the dialog);
#: ``{auth}`` is sipp's [authentication] line once the bridge has challenged.
_INVITE = """INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "{name}" <sip:phone[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:phone[call_number]@[local_ip]:[local_port];transport=[transport]>
{auth}Max-Forwards: 70
[vh]
Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone 53655765 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
"""
_ACK_401 = """ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: "{name}" <sip:phone[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
"""


def _send(text: str, retrans: bool = True) -> str:
    attribute = ' retrans="500"' if retrans else ""
    return f"  <send{attribute}>\n    <![CDATA[\n{text}\n    ]]>\n  </send>\n"


def authenticated(name: str) -> Phone:
    """A :class:`Phone` whose INVITE answers the digest challenge with sipp's ``-au``/``-ap``, up to
    the ACK of the 200; the builder's steps go on from there (INFO keys, re-INVITEs, BYE)."""
    phone = Phone(name=name)
    phone.steps += [
        _send(_INVITE.format(name=name, cseq=1, auth="")),
        '  <recv response="100" optional="true"/>\n',
        '  <recv response="401" auth="true"/>\n',
        _send(_ACK_401.format(name=name), retrans=False),
        _send(_INVITE.format(name=name, cseq=2, auth="[authentication]\n")),
        '  <recv response="100" optional="true"/>\n',
        '  <recv response="180" optional="true"/>\n',
        # The dialog's To, for requests after a re-INVITE from the bridge (as Phone.invite keeps).
        '  <recv response="200" rrs="true">\n    <action>\n'
        '      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to"/>\n'
        "    </action>\n  </recv>\n",
    ]
    phone.checks.append("to")
    phone.cseq = 2
    return phone.ack()


def press_star7(phone: Phone) -> Phone:
    """``*`` then ``7`` as SIP INFO application/dtmf-relay (one key per INFO, well inside the
    bridge's sequence gap), then a pause while the test reads the server's state."""
    return (
        phone.info("application/dtmf-relay", "Signal=*\nDuration=100")
        .info("application/dtmf-relay", "Signal=7\nDuration=100")
        .pause(3000)
        .bye()
    )


@contextlib.contextmanager
def calling(
    daemon: Daemon, phone: Phone, workdir: pathlib.Path, user: str | None = None
) -> Iterator[None]:
    """Run ``phone`` under sipp in the background (with ``user``'s credentials, if any) while the
    test acts; asserts the scenario passed, so an unexpected re-INVITE fails the test."""
    workdir.mkdir()
    extra = () if user is None else ("-au", user, "-ap", CREDENTIALS[user])
    path = phone.write(workdir / "phone.xml")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        run = pool.submit(sipp, daemon, str(path), workdir=workdir, timeout=40, extra=extra)
        yield
        result = run.result(80)
        assert result.returncode == 0, explain(result, daemon, workdir)


def audio(moderator: Moderator, attendee: str) -> bool | None:
    entry = moderator.entry(attendee)
    return None if entry is None else bool(entry["mediaState"]["audio"])


def test_star7_from_an_authenticated_moderator_phone_mutes_the_others(
    tmp_path: pathlib.Path,
) -> None:
    # Muted by re-INVITE (legacy signalling), then in the meeting long enough to be looked at.
    other = authenticated("Desk 1002").expect_reinvite("sendonly", timeout_ms=30000)
    other.pause(4000).bye()
    with (
        running_daemon(tmp_path, extra_config=USERS, env=ENV) as daemon,
        calling(daemon, other, tmp_path / "member", "1002"),
    ):
        moderator = Moderator(daemon)
        member = moderator.phone("Desk 1002")
        assert member["role"] == "member" and audio(moderator, member["attendeeId"]) is True
        with calling(daemon, press_star7(authenticated("Desk 1001")), tmp_path / "chair", "1001"):
            chair = moderator.phone("Desk 1001")
            assert chair["role"] == "moderator"
            # The server's own roster says so: the bridge asked it to mute all, and it did.
            moderator.wait_for(
                lambda _: audio(moderator, member["attendeeId"]) is False, what="Desk 1002 muted"
            )
            daemon.wait_log("key sequence", r"sequence=\*7")
            assert audio(moderator, chair["attendeeId"]) is True  # the initiator is spared


@pytest.mark.parametrize("caller", ["guest 1003", "unauthenticated"])
def test_star7_from_a_phone_that_is_no_moderator_mutes_nobody(
    tmp_path: pathlib.Path, caller: str
) -> None:
    """A guest role from [auth], and a caller on a bridge without users (every caller a guest)."""
    guest = caller == "guest 1003"
    config, env = (USERS, ENV) if guest else ("", {})
    presser_user, listener_user = ("1003", "1002") if guest else (None, None)

    def phone(name: str, user: str | None) -> Phone:
        return authenticated(name) if user else Phone(name=name).invite()

    # Any re-INVITE to the listener (a mute) fails its scenario.
    listener = phone("Listener", listener_user).pause(8000).bye()
    with (
        running_daemon(tmp_path, extra_config=config, env=env) as daemon,
        calling(daemon, listener, tmp_path / "listener", listener_user),
    ):
        moderator = Moderator(daemon)
        attendee = moderator.phone("Listener")["attendeeId"]
        presser = press_star7(phone("Presser", presser_user))
        with calling(daemon, presser, tmp_path / "presser", presser_user):
            assert moderator.phone("Presser")["role"] == "guest"
            daemon.wait_log("key sequence", r"sequence=\*7")
        assert audio(moderator, attendee) is True
