"""The dial-in voice menu end to end (docs/calls.md, "One number for every meeting"): the real
daemon with its embedded server, phones of the test's own (:mod:`tests.interop.rtpphone`) that key
meeting IDs and PINs as RFC 4733 events or SIP INFO, and hear the prompts byte for byte."""

from __future__ import annotations

import pathlib
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.interop.baresip import running_baresip
from tests.interop.harness import LOOPBACK, MODERATOR, Daemon, running_daemon
from tests.interop.meeting import Moderator
from tests.interop.rtpphone import RtpSocket, SipPhone, press
from tests.interop.test_media import FRAME, PROMPTS, metrics, wait_prompt
from tests.interop.test_ops import sample

pytestmark = pytest.mark.interop

OURS = (PROMPTS / "menu_meeting_id.pcmu").read_bytes()
"""The bridge's own "please enter the meeting ID" (3 s), heard in the first test."""


def recording(name: str, frames: int = 10) -> bytes:
    """An operator's recording of the prompt ``name`` (``[media] prompts_dir``): 0.2 s of noise
    of its own, which the phone must hear byte for byte. Short, so that these tests spend their
    time on the menu, not on listening (the bridge's own menu prompts last 0.7-5.6 s)."""
    return random.Random(name).randbytes(FRAME * frames)


ASK_ID = recording("menu_meeting_id")
NOT_FOUND = recording("menu_not_found")
ASK_PIN = recording("menu_host_pin")
WRONG_PIN = recording("menu_wrong_pin")
GOODBYE = recording("menu_goodbye")
LOBBY_WAITING = recording("lobby_waiting")
RECORDINGS = {
    "menu_meeting_id": ASK_ID,
    "menu_not_found": NOT_FOUND,
    "menu_host_pin": ASK_PIN,
    "menu_wrong_pin": WRONG_PIN,
    "menu_goodbye": GOODBYE,
    "lobby_waiting": LOBBY_WAITING,
}
PIN = "424242"

SERVER = f"""
[server]
port = 0
tokens = [{{ name = "console", role = "moderator", token = "{MODERATOR}" }}]
spaces = [
  {{ id = "demo", dial_in_id = 1000 }},
  {{ id = "board", dial_in_id = "2000", host_pin_env = "BOARD_PIN" }},
  {{ id = "lobby", dial_in_id = "3000", host_pin_env = "BOARD_PIN", guest_policy = "ASK_MODERATOR" }},
]

[dialplan]
join = "@menu"
"+15551230000" = "@menu"
demo = "demo"

[calls]
menu_silence_seconds = 3
"""


@contextmanager
def menu_daemon(workdir: pathlib.Path, *, own_prompts: bool = True) -> Iterator[Daemon]:
    """The daemon with the menu; with ``own_prompts``, an operator's recordings of the menu's
    prompts (mu-law only: the A-law ones stay the bridge's, file by file)."""
    media = ""
    if own_prompts:
        folder = workdir / "prompts"
        folder.mkdir()
        for name, audio in RECORDINGS.items():
            (folder / f"{name}.pcmu").write_bytes(audio)
        media = f'prompts_dir = "{folder}"\n'
    with running_daemon(
        workdir, extra_config=SERVER, media_config=media, env={"BOARD_PIN": PIN}
    ) as daemon:
        yield daemon


@contextmanager
def dialling(
    daemon: Daemon, name: str, service: str = "join"
) -> Iterator[tuple[SipPhone, RtpSocket]]:
    """A phone in an answered call to ``service``, with its RTP socket; hung up at the end
    unless the bridge did."""
    with (
        RtpSocket() as media,
        SipPhone((LOOPBACK, daemon.port), name=name, service=service) as phone,
    ):
        answer = phone.invite(media.port)
        assert answer.status == 200, answer.first
        assert phone.answer is not None and phone.answer.direction == "sendrecv"
        yield phone, media
        if not phone.ended:
            phone.bye()


def hear(media: RtpSocket, prompt: bytes, since: float = 0.0, timeout: float = 12.0) -> None:
    """The whole ``prompt`` reaches the phone after ``since``."""
    wait_prompt(media, prompt, since, timeout)


def roster(moderator: Moderator) -> dict[str, dict[str, object]]:
    return {str(a["displayName"]): a for a in moderator.details()["attendees"]}


def wait_bye(phone: SipPhone, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not phone.byes:
        assert time.monotonic() < deadline, "no BYE from the bridge"
        time.sleep(0.02)


def test_rtp_and_info_keys_join_the_demo_meeting(tmp_path: pathlib.Path) -> None:
    with menu_daemon(tmp_path, own_prompts=False) as daemon:
        # Said at start: where the menu answers, and the demo's meeting ID.
        daemon.wait_log(rf"dial-in\s.*call=sip:join@127\.0\.0\.1:{daemon.port}", "meeting_id=1000")
        moderator = Moderator(daemon, "demo")
        with dialling(daemon, "Keyed In RTP") as (phone, media):
            hear(media, OURS)
            press(media, phone.bridge_media, "1000#")
            entry = moderator.phone("Keyed In RTP")
            assert entry["role"] == "guest" and entry["admitted"]
            with dialling(daemon, "Keyed In INFO") as (other, _media):
                other.key("1000#")
                assert moderator.phone("Keyed In INFO")["admitted"]
            assert not daemon.log_has("1000#") and not daemon.log_has(r"digit=\d")
        joined = sample(metrics(daemon), "spaces_bridge_menu_calls_total", outcome="joined")
        assert joined == 2


def test_three_unknown_ids_hear_the_prompts_then_goodbye_and_bye(tmp_path: pathlib.Path) -> None:
    with menu_daemon(tmp_path) as daemon:
        moderator = Moderator(daemon, "demo")
        with dialling(daemon, "Wrong Number") as (phone, media):
            hear(media, ASK_ID)
            for attempt in range(3):
                since = time.monotonic()
                press(media, phone.bridge_media, f"9{attempt}#")
                hear(media, NOT_FOUND, since)
                if attempt < 2:
                    hear(media, ASK_ID, since)
            hear(media, GOODBYE, since)
            wait_bye(phone)
        assert "Wrong Number" not in roster(moderator)
        text = metrics(daemon)
        assert sample(text, "spaces_bridge_menu_calls_total", outcome="not_found") == 1
        assert sample(text, "spaces_bridge_menu_guesses_total", kind="id", result="wrong") == 3


def test_the_host_pin_makes_a_moderator_whose_star7_mutes_all(tmp_path: pathlib.Path) -> None:
    with menu_daemon(tmp_path) as daemon:
        moderator = Moderator(daemon, "board")
        with dialling(daemon, "Board Guest") as (guest, guest_media):
            press(guest_media, guest.bridge_media, "2000#")
            hear(guest_media, ASK_PIN)
            press(guest_media, guest.bridge_media, "#")  # no PIN: a guest
            entry = moderator.phone("Board Guest")
            assert entry["role"] == "guest"
            assert entry["mediaState"]["audio"] is True
            with dialling(daemon, "Board Host") as (host, host_media):
                press(host_media, host.bridge_media, "2000#")
                hear(host_media, ASK_PIN)
                since = time.monotonic()
                press(host_media, host.bridge_media, "1111#")  # wrong: asked again
                hear(host_media, WRONG_PIN, since)
                hear(host_media, ASK_PIN, since)
                press(host_media, host.bridge_media, PIN + "#")
                assert moderator.phone("Board Host")["role"] == "moderator"
                press(host_media, host.bridge_media, "*7")
                moderator.wait_for(
                    lambda d: any(
                        a["displayName"] == "Board Guest" and not a["mediaState"]["audio"]
                        for a in d["attendees"]
                    ),
                    what="the guest muted by the host's *7",
                )
        assert not daemon.log_has(PIN)
        assert "424242" not in daemon.log()


def test_a_guest_of_a_lobby_space_waits_and_is_admitted(tmp_path: pathlib.Path) -> None:
    with menu_daemon(tmp_path) as daemon:
        moderator = Moderator(daemon, "lobby")
        with dialling(daemon, "Lobby Guest") as (phone, media):
            press(media, phone.bridge_media, "3000#")
            hear(media, ASK_PIN)
            press(media, phone.bridge_media, "#")
            waiting = moderator.phone("Lobby Guest")
            assert waiting["admitted"] is False
            hear(media, LOBBY_WAITING)
            moderator.decide(str(waiting["attendeeId"]), "allow")
            moderator.wait_for(
                lambda d: any(
                    a["displayName"] == "Lobby Guest" and a["admitted"] for a in d["attendees"]
                ),
                what="the guest admitted",
            )


def test_the_fourth_wrong_pin_from_one_source_is_refused_unchecked(
    tmp_path: pathlib.Path,
) -> None:
    with menu_daemon(tmp_path) as daemon:
        with dialling(daemon, "Guesser") as (phone, media):
            press(media, phone.bridge_media, "2000#")
            hear(media, ASK_PIN)
            for guess in ("1111", "2222", "3333"):
                since = time.monotonic()
                press(media, phone.bridge_media, guess + "#")
                hear(media, WRONG_PIN, since)
            wait_bye(phone)  # three wrong PINs end the call
        # Another call from the same address within the minute: even the right PIN is refused,
        # since it is not checked at all.
        with dialling(daemon, "Guesser Again") as (phone, media):
            press(media, phone.bridge_media, "2000#")
            hear(media, ASK_PIN)
            since = time.monotonic()
            press(media, phone.bridge_media, PIN + "#")
            hear(media, GOODBYE, since)
            wait_bye(phone)
        assert "Guesser Again" not in roster(Moderator(daemon, "board"))
        text = metrics(daemon)
        assert sample(text, "spaces_bridge_menu_guesses_total", kind="pin", result="wrong") == 3
        assert sample(text, "spaces_bridge_menu_guesses_total", kind="pin", result="refused") == 1
        assert sample(text, "spaces_bridge_menu_calls_total", outcome="limited") == 1


def test_a_trunk_did_reaches_the_menu_and_silence_hears_goodbye(tmp_path: pathlib.Path) -> None:
    with menu_daemon(tmp_path) as daemon:
        with dialling(daemon, "Trunk Caller", service="+15551230000") as (phone, media):
            hear(media, ASK_ID)
            press(media, phone.bridge_media, "1000#")
            Moderator(daemon, "demo").phone("Trunk Caller")
        with dialling(daemon, "Silent Caller", service="+15551230000") as (phone, media):
            hear(media, ASK_ID)
            hear(media, GOODBYE, timeout=8)
            wait_bye(phone)
        assert sample(metrics(daemon), "spaces_bridge_menu_calls_total", outcome="silence") == 1


def test_baresip_dials_the_menu_and_keys_the_meeting_id(tmp_path: pathlib.Path) -> None:
    """What a person does after `make run`: a real softphone calls `sip:join@…`, keys the meeting
    ID as it sends keys (RFC 4733 events), and is in the meeting."""
    with menu_daemon(tmp_path) as daemon, running_baresip(tmp_path, display="Softphone") as phone:
        phone.dial(f"sip:join@{LOOPBACK}:{daemon.port}")
        phone.wait_event("CALL_ESTABLISHED", timeout=10)
        daemon.wait_log("menu started")
        phone.command("sndcode", "1000#")
        entry = Moderator(daemon, "demo").phone("Softphone", timeout=15)
        assert entry["admitted"] and entry["role"] == "guest", entry
        phone.hangup()
        phone.wait_event("CALL_CLOSED")
