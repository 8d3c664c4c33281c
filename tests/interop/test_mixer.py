"""The meeting's audio through the embedded server's mixer, end to end (docs/mixer.md, docs/media.md):
the real daemon with its supervised Janus AudioBridge, real phones (SIP and RTP of the test's own,
:mod:`tests.interop.rtpphone`, and real baresip), real audio.

Each phone sends a tone of its own frequency, so what a phone receives says whose audio it is: a
phone hears the others' tones and never its own (AudioBridge mixes everyone but the listener).
Tones are measured by their power (Goertzel, :func:`bridge.media.analysis.tone_power`) over windows
that begin after Janus's 6-packet prebuffer (~150 ms at a join).
"""

from __future__ import annotations

import array
import concurrent.futures
import json
import math
import os
import pathlib
import re
import signal
import socket
import time
import urllib.request
import wave
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from bridge.media.analysis import dominant_frequency, mean_power, to_db, tone_power
from bridge.media.g711 import ULAW
from tests.interop.baresip import Baresip, establish, running_baresip
from tests.interop.harness import LOOPBACK, MODERATOR, Daemon, running_daemon
from tests.interop.meeting import Moderator
from tests.interop.rtpphone import Message, Packet, RtpSocket, SipPhone, Talker, calling
from tests.interop.test_ops import get, sample

pytestmark = pytest.mark.interop

A, B, C = 440.0, 1000.0, 1700.0
"""The tones of phones A, B and C (Hz): far apart, and none a harmonic of another."""
TONES = (A, B, C)
RATE = 8000
PREBUFFER = 0.15
"""Janus 1.1.2 holds 6 packets of a joining participant (120 ms) before mixing it: measured 131-155
ms from the first packet to the first mixed one (docs/mixer.md)."""
HEARD_DB = -30.0
"""A tone heard: its power in the mix (the tones are sent at about -13 dBFS RMS)."""
ABSENT_DB = -55.0
"""A tone absent: below this, with another tone present, is leakage and G.711 noise (~-80)."""
MUTE_BUDGET = 0.1
"""REST mute returned -> last loud packet at the other phone (the server mutes in Janus before it
answers; what is left is Janus's mix period and the packets already on their way)."""


# --- what a phone heard ---------------------------------------------------------------------------


def samples(packets: Iterable[Packet]) -> list[int]:
    """The 16-bit samples of the PCMU packets among ``packets``, in arrival order."""
    out: list[int] = []
    for packet in packets:
        if packet.is_rtp and packet.payload_type == 0:
            out += ULAW.samples(packet.payload)
    return out


@dataclass(frozen=True)
class Heard:
    """What a phone received in a window: its level and each tone's power (dBFS)."""

    packets: int
    level: float
    tones: dict[float, float]
    dominant: float | None

    def share(self, frequency: float) -> float:
        """How much of what was heard is that tone (0-1)."""
        total = 10 ** (self.level / 10)
        return 10 ** (self.tones[frequency] / 10) / total if total > 0 else 0.0


def analyse(audio: Sequence[int], rate: int = RATE) -> Heard:
    return Heard(
        packets=len(audio) * 50 // rate,
        level=to_db(mean_power(audio)),
        tones={f: to_db(tone_power(audio, f, rate)) for f in TONES},
        dominant=dominant_frequency(audio, rate, TONES) if audio else None,
    )


def heard(media: RtpSocket, since: float, until: float) -> Heard:
    return analyse(samples(media.received(since, until)))


def hears(
    what: Heard,
    wanted: Iterable[float],
    unwanted: Iterable[float],
    who: str,
    *,
    packets: int = 40,
) -> None:
    """``who`` heard every tone of ``wanted`` (and almost only them), none of ``unwanted``, in
    ``packets`` packets at least."""
    wanted, unwanted = list(wanted), list(unwanted)
    assert what.packets >= packets, f"{who} received {what.packets} packets' worth of audio: {what}"
    for frequency in wanted:
        assert what.tones[frequency] > HEARD_DB, f"{who} does not hear {frequency} Hz: {what}"
    share = sum(what.share(f) for f in wanted)
    assert share > 0.9, f"{who} hears more than the tones {wanted} ({share:.2f}): {what}"
    for frequency in unwanted:
        assert what.tones[frequency] < ABSENT_DB, f"{who} hears {frequency} Hz: {what}"
    if len(wanted) == 1:
        assert what.dominant == wanted[0], what


def silent(what: Heard, who: str, *, packets: int = 40) -> None:
    """``who`` kept receiving (``packets`` at least) but heard none of the tones."""
    assert what.packets >= packets, f"{who} received {what.packets} packets' worth: {what}"
    for frequency in TONES:
        assert what.tones[frequency] < ABSENT_DB, f"{who} hears {frequency} Hz: {what}"


def settle(after: float, seconds: float = 1.0) -> tuple[float, float]:
    """The window ``[after, after + seconds)``, once it is over (and its last packets in)."""
    until = after + seconds
    time.sleep(max(0.0, until + 0.05 - time.monotonic()))
    return after, until


def first_loud(media: RtpSocket, since: float, frequency: float, timeout: float, who: str) -> float:
    """When the first packet carrying the tone ``frequency`` arrived after ``since``."""

    def found(packets: list[Packet]) -> float | None:
        for packet in packets:
            if packet.at >= since and packet.loud and packet.is_rtp:
                audio = ULAW.samples(packet.payload)
                if tone_power(audio, frequency, RATE) > 0.5 * mean_power(audio):
                    return packet.at
        return None

    media.wait(lambda packets: found(packets) is not None, timeout, f"{who} hears {frequency} Hz")
    at = found(media.received())
    assert at is not None
    return at


# --- phones in a meeting --------------------------------------------------------------------------


@dataclass
class Member:
    """A phone of the test's own in the meeting, sending its tone (it never stops for a mute or a
    hold: it ignores the bridge's re-INVITEs, as far as the audio goes)."""

    name: str
    frequency: float
    phone: SipPhone
    media: RtpSocket
    talker: Talker
    attendee: str = ""


@contextmanager
def members(
    daemon: Daemon, *phones: tuple[str, float], service: str = "demo"
) -> Iterator[list[Member]]:
    """Phones called ``name`` in the meeting of ``service``, each sending its tone; hung up at
    the end."""
    with ExitStack() as stack:
        out = []
        for name, frequency in phones:
            media = stack.enter_context(RtpSocket())
            phone = stack.enter_context(
                calling((daemon.host, daemon.port), media.port, name=name, service=service)
            )
            talker = stack.enter_context(Talker(media, phone.bridge_media, frequency=frequency))
            out.append(Member(name, frequency, phone, media, talker))
        moderator = Moderator(daemon, service)
        for member in out:
            member.attendee = str(moderator.phone(member.name)["attendeeId"])
        yield out


def roster(moderator: Moderator) -> list[tuple[str, str, bool, bool, bool]]:
    """Who is in the meeting, and how: (id, name, audio, held, admitted), by id."""
    return sorted(
        (a["attendeeId"], a["displayName"], a["mediaState"]["audio"], a["held"], a["admitted"])
        for a in moderator.details()["attendees"]
    )


def muted_drops(daemon: Daemon) -> float:
    """Phone packets the relay's send gate dropped (all calls)."""
    status, text = get(daemon.ops_url + "/metrics")
    assert status == 200, text
    return sample(text, "spaces_bridge_media_dropped_total", reason="muted")


def mix_ports(daemon: Daemon) -> dict[str, int]:
    """Each phone attendee's Janus RTP port, from the daemon's ``phone added to the mix`` lines."""
    ports = {}
    for line in daemon.log().splitlines():
        if "phone added to the mix" in line:
            attendee = re.search(r"\battendee=(\w+)", line)
            port = re.search(r"\bport=(\d+)", line)
            assert attendee is not None and port is not None, line
            ports[attendee[1]] = int(port[1])
    return ports


def hold(port: int, timeout: float = 0.15) -> RtpSocket:
    """A socket of ours on a loopback port a killed process is about to release."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
                continue
        return RtpSocket(LOOPBACK, port)


def janus_pids(daemon: Daemon) -> list[int]:
    """Every Janus the daemon started, in order (its ``janus started pid=N`` lines)."""
    return [
        int(match[1])
        for line in daemon.log().splitlines()
        if "janus started" in line and (match := re.search(r"\bpid=(\d+)", line))
    ]


# --- Janus's own view -----------------------------------------------------------------------------


@dataclass
class JanusView:
    """Janus's own list of its rooms' participants, asked over its HTTP API with the API secret and
    AudioBridge admin key the daemon generated into Janus's runtime folder. The daemon runs with
    ``TMPDIR=tmpdir`` so that the folder (``spaces-janus-*``, docs/mixer.md) is the test's."""

    tmpdir: pathlib.Path
    _counter: int = field(default=0)

    def _setting(self, file: str, name: str) -> str:
        folders = list(self.tmpdir.glob("spaces-janus-*"))
        assert len(folders) == 1, f"Janus runtime folders under {self.tmpdir}: {folders}"
        text = (folders[0] / file).read_text()
        match = re.search(rf'^\s*{name} = "?([^"\n]*)"?\s*$', text, re.M)
        assert match is not None, f"no {name} in {file}"
        return match[1]

    def _post(self, url: str, body: dict[str, Any], secret: str) -> dict[str, Any]:
        self._counter += 1
        body = {**body, "transaction": f"t{self._counter}", "apisecret": secret}
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            result: dict[str, Any] = json.loads(answer.read())
        assert result.get("janus") in ("success", "ack"), result
        return result

    def participants(self) -> list[dict[str, Any]]:
        """Every participant of every room: ``id``, ``display``, ``muted``..."""
        secret = self._setting("janus.jcfg", "api_secret")
        admin_key = self._setting("janus.plugin.audiobridge.jcfg", "admin_key")
        port = self._setting("janus.transport.http.jcfg", "port")
        base = f"http://{LOOPBACK}:{port}/janus"
        session = self._post(base, {"janus": "create"}, secret)["data"]["id"]
        try:
            handle = self._post(
                f"{base}/{session}",
                {"janus": "attach", "plugin": "janus.plugin.audiobridge"},
                secret,
            )["data"]["id"]

            def ask(request: dict[str, Any]) -> dict[str, Any]:
                answer = self._post(
                    f"{base}/{session}/{handle}", {"janus": "message", "body": request}, secret
                )
                data: dict[str, Any] = answer["plugindata"]["data"]
                assert "error" not in data, data
                return data

            rooms = ask({"request": "list", "admin_key": admin_key})["list"]
            return [
                participant
                for room in rooms
                for participant in ask({"request": "listparticipants", "room": room["room"]})[
                    "participants"
                ]
            ]
        finally:
            self._post(f"{base}/{session}", {"janus": "destroy"}, secret)

    def muted(self) -> dict[str, bool]:
        """Each participant's mute in Janus, by display name."""
        return {str(p["display"]): bool(p["muted"]) for p in self.participants()}


# --- 1. two phones hear each other ----------------------------------------------------------------


def test_two_phones_hear_each_other_and_not_themselves(tmp_path: pathlib.Path) -> None:
    with (
        running_daemon(tmp_path) as daemon,
        members(daemon, ("Phone A", A), ("Phone B", B)) as (a, b),
    ):
        joined = time.monotonic()
        for listener, talker in ((a, b), (b, a)):
            delay = first_loud(listener.media, joined, talker.frequency, 2, listener.name)
            ms = (delay - joined) * 1000
            print(f"{listener.name} hears {talker.name} {ms:.0f} ms after the joins")
        since, until = settle(joined + PREBUFFER + 0.15)
        hears(heard(a.media, since, until), [B], [A, C], "A")
        hears(heard(b.media, since, until), [A], [B, C], "B")
        # the mix reaches the phone through its own relay leg, from where our SDP said
        assert {p.source for p in a.media.received(since, until)} == {a.phone.bridge_media}


def tone_wav(path: pathlib.Path, frequency: float, seconds: int) -> pathlib.Path:
    """A 48 kHz stereo 16-bit WAV of a sine at ``frequency`` (-10 dBFS peak): what baresip's
    ``aufile`` takes with ``ausrc_srate 48000`` and ``ausrc_channels 2``. 1,200 samples (25 ms)
    hold a whole number of periods of 440 and 1000 Hz, so the file repeats them seamlessly."""
    period = 1200
    assert (frequency * period / 48000).is_integer()
    amplitude = 32767 * 10 ** (-10 / 20)
    cycle = array.array(
        "h",
        [
            round(amplitude * math.sin(2 * math.pi * frequency * i / 48000))
            for i in range(period)
            for _channel in (0, 1)
        ],
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes((cycle * (seconds * 48000 // period)).tobytes())
    return path


def decoded(folder: pathlib.Path) -> tuple[list[int], int]:
    """The audio baresip's ``sndfile`` module dumped from its decoder (``dump-*-dec.wav``, written
    whole once the call is closed): its first channel's samples and its rate."""
    dumps = sorted(folder.glob("dump-*-dec.wav"))
    assert len(dumps) == 1, f"decoder dumps in {folder}: {dumps}"
    with wave.open(str(dumps[0])) as dump:
        assert dump.getsampwidth() == 2
        channels, rate = dump.getnchannels(), dump.getframerate()
        audio = array.array("h", dump.readframes(dump.getnframes()))
    return list(audio[::channels]), rate


def test_two_baresip_phones_hear_each_others_wav_tone(tmp_path: pathlib.Path) -> None:
    """Real softphones: each plays a WAV tone (``aufile``) and records what it decodes
    (``sndfile``). baresip 1.0's aufile reads the file once and ends the call at its end (no loop):
    20 s outlasts the test."""
    phones: dict[str, Baresip] = {}
    with running_daemon(tmp_path) as daemon:
        uri = f"sip:demo@{LOOPBACK}:{daemon.port}"
        with ExitStack() as stack:
            for name, frequency in (("a", A), ("b", B)):
                wav = tone_wav(tmp_path / f"{name}.wav", frequency, 20)
                dumps = tmp_path / f"{name}-dumps"
                dumps.mkdir()
                phones[name] = phone = stack.enter_context(
                    running_baresip(
                        tmp_path,
                        name=f"baresip-{name}",
                        display=f"Softphone {name.upper()}",
                        audio_source=f"aufile,{wav}",
                        extra=f"module\t\t\taufile.so\nmodule\t\t\tsndfile.so\nsnd_path\t\t{dumps}\n",
                    )
                )
                establish(daemon, phone, uri)
            time.sleep(2.0)  # both in the mix for a while
            for phone in phones.values():
                phone.hangup()
            for phone in phones.values():
                closed = phone.wait_event("CALL_CLOSED")
                assert "end of file" not in str(closed.get("param")), phone.explain()
        for name, own, other in (("a", A, B), ("b", B, A)):
            audio, rate = decoded(tmp_path / f"{name}-dumps")
            # the last second before the hangup: both phones talking, prebuffers long filled
            window = audio[-int(1.2 * rate) : -int(0.2 * rate)]
            what = analyse(window, rate)
            assert len(window) == rate, f"{name} decoded {len(audio) / rate:.2f} s"
            assert what.tones[other] > HEARD_DB and what.share(other) > 0.9, (name, what)
            assert what.tones[own] < ABSENT_DB, (name, what)
            assert what.dominant == other, (name, what)


# --- 2. an admin mute silences the phone in the mix -----------------------------------------------


def test_an_admin_mute_silences_the_phone_at_the_other_within_100_ms(
    tmp_path: pathlib.Path,
) -> None:
    latencies: list[float] = []  # REST call returned -> last loud packet at B
    from_request: list[float] = []  # REST call made -> last loud packet at B
    back: list[float] = []  # unmute returned -> first packet of the tone at B
    with (
        running_daemon(tmp_path) as daemon,
        members(daemon, ("Phone A", A), ("Phone B", B)) as (a, b),
    ):
        moderator = Moderator(daemon)
        first_loud(b.media, 0, A, 2, "B")
        for _ in range(3):
            since, until = settle(time.monotonic(), 0.5)
            hears(heard(b.media, since, until), [A], [B, C], "B before the mute", packets=20)

            sent = a.talker.sent
            requested = time.monotonic()
            moderator.mute(a.attendee)
            returned = time.monotonic()
            time.sleep(0.6)
            received = b.media.received(returned - 1.0, returned + 0.6)
            last = max(p.at for p in received if p.loud)
            latencies.append(last - returned)
            from_request.append(last - requested)
            assert a.talker.sent - sent >= 25, "A kept sending through its mute"
            silent(
                heard(b.media, returned + MUTE_BUDGET, returned + 0.6),
                "B while A is muted",
                packets=20,
            )

            moderator.mute(a.attendee, audio=True)
            returned = time.monotonic()
            back.append(first_loud(b.media, returned, A, 2, "B after the unmute") - returned)
        since, until = settle(time.monotonic(), 0.5)
        hears(heard(b.media, since, until), [A], [B, C], "B after the unmutes", packets=20)
        assert a.phone.wait_offers(6) == ["sendonly", "sendrecv"] * 3
    print(
        "mute: REST returned -> last loud packet at the other (ms):",
        [round(x * 1000, 1) for x in latencies],
        "; REST sent -> last loud packet (ms):",
        [round(x * 1000, 1) for x in from_request],
        "; unmute returned -> first tone packet (ms):",
        [round(x * 1000, 1) for x in back],
    )
    assert max(latencies) < MUTE_BUDGET, latencies
    assert max(back) < 0.5, back


# --- 3. mute all ----------------------------------------------------------------------------------


def test_mute_all_leaves_only_the_excluded_phone_audible(tmp_path: pathlib.Path) -> None:
    with (
        running_daemon(tmp_path) as daemon,
        members(daemon, ("Phone A", A), ("Phone B", B), ("Phone C", C)) as (a, b, c),
    ):
        moderator = Moderator(daemon)
        joined = time.monotonic()
        since, until = settle(joined + PREBUFFER + 0.15)
        hears(heard(a.media, since, until), [B, C], [A], "A before the mute all")
        hears(heard(b.media, since, until), [A, C], [B], "B before the mute all")

        sent = [m.talker.sent for m in (a, b, c)]
        moderator.call("POST", f"{moderator.meeting}/muteall", {"exclusionList": [a.attendee]})
        done = time.monotonic()
        assert {x[0]: x[2] for x in roster(moderator)} == {
            a.attendee: True,
            b.attendee: False,
            c.attendee: False,
        }
        # B and C hear "you are muted" (0.8 s) in place of the meeting first; A hears nothing
        since, until = settle(done + 1.0)
        silent(heard(a.media, done + MUTE_BUDGET, until), "A after the mute all")
        hears(heard(b.media, since, until), [A], [B, C], "B after the mute all")
        hears(heard(c.media, since, until), [A], [B, C], "C after the mute all")
        # all three kept sending throughout
        assert all(m.talker.sent - n >= 90 for m, n in zip((a, b, c), sent, strict=True))


# --- 4. a phone that ignores the sendonly re-INVITE -----------------------------------------------


def test_a_muted_phone_that_keeps_sending_stays_silent_in_the_meeting(
    tmp_path: pathlib.Path,
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    janus = JanusView(run)
    with (
        running_daemon(tmp_path, env={"TMPDIR": str(run)}) as daemon,
        members(daemon, ("Phone A", A), ("Phone B", B)) as (a, b),
    ):
        moderator = Moderator(daemon)
        first_loud(b.media, 0, A, 2, "B")
        assert janus.muted() == {"Phone A": False, "Phone B": False}

        moderator.mute(a.attendee)
        assert a.phone.wait_offers(1) == ["sendonly"]  # answered recvonly; the talker goes on
        time.sleep(0.2)
        drops, sent = muted_drops(daemon), a.talker.sent
        start = time.monotonic()
        since, until = settle(start, 1.5)
        silent(heard(b.media, since, until), "B while A is muted", packets=60)
        sending = a.talker.sent - sent
        assert sending >= 60, f"A sent {sending} packets while muted"
        # the relay's gate drops what A sends...
        dropped = muted_drops(daemon) - drops
        assert dropped >= sending - 5, f"the gate dropped {dropped} of {sending}"
        # ... and Janus has the participant muted too
        assert janus.muted() == {"Phone A": True, "Phone B": False}
        assert moderator.entry(a.attendee)["mediaState"]["audio"] is False  # type: ignore[index]

        moderator.mute(a.attendee, audio=True)
        assert janus.muted() == {"Phone A": False, "Phone B": False}
        first_loud(b.media, time.monotonic(), A, 2, "B after the unmute")


# --- 5. Janus killed mid-meeting ------------------------------------------------------------------


def test_the_meeting_hears_again_after_janus_is_killed(tmp_path: pathlib.Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    janus = JanusView(run)
    with (
        running_daemon(tmp_path, env={"TMPDIR": str(run)}) as daemon,
        members(daemon, ("Phone A", A), ("Phone B", B), ("Phone C", C)) as (a, b, c),
        ExitStack() as stack,
    ):
        moderator = Moderator(daemon)
        moderator.mute(c.attendee)  # C keeps sending; it must stay muted across the restart
        since, until = settle(time.monotonic() + PREBUFFER + 0.15)
        hears(heard(a.media, since, until), [B], [A, C], "A before the kill")
        hears(heard(b.media, since, until), [A], [B, C], "B before the kill")
        before = roster(moderator)
        assert janus.muted() == {"Phone A": False, "Phone B": False, "Phone C": True}
        ports = mix_ports(daemon)
        assert set(ports) == {a.attendee, b.attendee, c.attendee}, ports

        assert mixer_metrics(daemon) == (1.0, 0.0)  # up, restarts
        pids = janus_pids(daemon)
        assert len(pids) == 1, daemon.log()
        os.kill(pids[0], signal.SIGKILL)
        killed = time.monotonic()
        # A fresh Janus hands out its ports from the bottom of its range again, so the phones
        # could get their old ports back and be heard with no leg moved. Holding the old ports
        # (the restart comes 0.2 s after the exit) makes every phone's endpoint a new one: the
        # meeting is heard again only if the bridge moves each leg (app.event.attendee.media).
        old = {attendee: stack.enter_context(hold(port)) for attendee, port in ports.items()}
        daemon.wait_log(r"\bjanus started\b", rf"\bpid=(?!{pids[0]}\b)\d+")
        back = {
            listener.name: first_loud(listener.media, killed + 0.1, other, 5, listener.name)
            - killed
            for listener, other in ((a, B), (b, A))
        }
        moved = time.monotonic()  # A hears B: both legs moved (Janus sends after a packet in)
        print("SIGKILL -> the other's tone again (s):", {k: round(v, 3) for k, v in back.items()})
        assert max(back.values()) < 3.0, back

        since, until = settle(time.monotonic() + PREBUFFER)
        hears(heard(a.media, since, until), [B], [A, C], "A after the restart")
        hears(heard(b.media, since, until), [A], [B, C], "B after the restart")
        hears(heard(c.media, since, until), [A, B], [C], "C after the restart")
        assert roster(moderator) == before
        assert janus.muted() == {"Phone A": False, "Phone B": False, "Phone C": True}
        assert len(janus_pids(daemon)) == 2
        assert mixer_metrics(daemon) == (1.0, 1.0)
        # the legs sent to the old ports while Janus was down (but C's: muted, it sends one
        # keepalive a second), and send there no more
        for attendee, held in old.items():
            if attendee != c.attendee:
                assert held.received(killed, moved), f"{attendee}'s leg never sent to its old port"
            assert not held.received(moved + 0.05), f"{attendee}'s leg still sends to its old port"


def test_a_mixer_that_cannot_start_is_retried_and_reported(tmp_path: pathlib.Path) -> None:
    """A Janus that exits at once (here /bin/false): the daemon still starts and answers calls,
    tries Janus again with a growing delay, and says why meetings have no audio on /readyz and in
    spaces_bridge_mixer_up, for a load balancer and an alert."""
    config = '\n[media_server]\njanus = "/bin/false"\n'
    with running_daemon(tmp_path, extra_config=config) as daemon:
        daemon.wait_log(r"janus start failed", r"exited with code 1 while starting")
        status, body = get(daemon.ops_url + "/readyz")
        assert status == 503, body
        assert json.loads(body)["reasons"] == [
            "the media platform is down: janus exited with code 1 while starting"
        ]
        assert mixer_metrics(daemon) == (0.0, 0.0)
        deadline = time.monotonic() + 5
        while daemon.log().count("janus start failed") < 3:
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.1)


def mixer_metrics(daemon: Daemon) -> tuple[float, float]:
    """``spaces_bridge_mixer_up`` and ``spaces_bridge_mixer_restarts_total``, as scraped."""
    status, text = get(daemon.ops_url + "/metrics")
    assert status == 200, text
    assert "spaces_bridge_mixer_up " in text, "the mixer's gauge is not exported"
    return sample(text, "spaces_bridge_mixer_up"), sample(
        text, "spaces_bridge_mixer_restarts_total"
    )


# --- 6. the lobby ---------------------------------------------------------------------------------


def test_a_lobby_caller_hears_the_meeting_only_once_admitted(tmp_path: pathlib.Path) -> None:
    with (
        running_daemon(tmp_path) as daemon,
        ExitStack() as stack,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        moderator = Moderator(daemon, "lobby")

        def wait_in_lobby(name: str, frequency: float) -> tuple[Member, Future[Message]]:
            """A call to the lobby space, waiting (183 with our SDP) and sending its tone."""
            media = stack.enter_context(RtpSocket())
            phone = stack.enter_context(SipPhone(target, name=name, service="lobby"))
            answer = pool.submit(phone.invite, media.port, timeout=15)
            entry = moderator.phone(name)
            assert not entry["admitted"], entry
            deadline = time.monotonic() + 5
            while phone.early is None:
                assert time.monotonic() < deadline, "no 183 with SDP"
                time.sleep(0.01)
            talker = stack.enter_context(Talker(media, phone.early.media, frequency=frequency))
            return Member(name, frequency, phone, media, talker, str(entry["attendeeId"])), answer

        def admit(member: Member, answer: Future[Message]) -> None:
            moderator.decide(member.attendee, "allow")
            assert answer.result(5).status == 200
            stack.callback(lambda: member.phone.ended or member.phone.bye())

        target = (daemon.host, daemon.port)
        b, b_answer = wait_in_lobby("Phone B", B)
        admit(b, b_answer)

        a, a_answer = wait_in_lobby("Phone A", A)
        # The waiting prompt (speech, about -35 dBFS, 2.2 s) pauses whatever else A would hear;
        # the 3 s pause after it is where the meeting would leak. Nothing of its tone in either.
        since, until = settle(time.monotonic(), 5.0)
        prompt = heard(a.media, since, since + 2.0)
        assert prompt.level > -45, f"A hears no waiting prompt: {prompt}"
        # (the prompt itself has -66 to -93 dB at 1000 Hz, over 1 s windows)
        for what in (prompt, heard(a.media, since + 2.0, until)):
            assert what.tones[B] < ABSENT_DB and what.share(B) < 0.01, what
        silent(heard(b.media, since, until), "B while A waits", packets=200)
        assert a.talker.sent >= 240

        admit(a, a_answer)
        admitted = time.monotonic()
        print(
            "admitted -> A hears B (ms):",
            round((first_loud(a.media, admitted, B, 3, "A") - admitted) * 1000),
            "; B hears A (ms):",
            round((first_loud(b.media, admitted, A, 3, "B") - admitted) * 1000),
        )
        since, until = settle(time.monotonic() + PREBUFFER)
        hears(heard(a.media, since, until), [B], [A, C], "A once admitted")
        hears(heard(b.media, since, until), [A], [B, C], "B once A is admitted")


# --- 7. no mixer ----------------------------------------------------------------------------------


def test_without_the_media_server_calls_work_but_carry_no_meeting_audio(
    tmp_path: pathlib.Path,
) -> None:
    with (
        running_daemon(tmp_path, extra_config="\n[media_server]\nenabled = false\n") as daemon,
        members(daemon, ("Phone A", A), ("Phone B", B)) as (a, b),
    ):
        joined = time.monotonic()
        since, until = settle(joined + PREBUFFER + 0.15)
        for member in (a, b):
            what = heard(member.media, since, until)
            assert all(what.tones[f] < ABSENT_DB for f in TONES), (member.name, what)
            assert not any(p.loud for p in member.media.received(since, until)), member.name
        assert a.talker.sent >= 50 and b.talker.sent >= 50
        daemon.wait_log(r"\bmeeting has no audio\b")
        assert not daemon.log_has(r"\bjanus started\b")
        status, text = get(daemon.ops_url + "/metrics")
        assert status == 200 and "spaces_bridge_mixer" not in text  # no mixer, nothing to watch
        assert len(Moderator(daemon).details()["attendees"]) == 2


def test_the_consoles_see_a_phone_talk_and_stop(tmp_path: pathlib.Path) -> None:
    """The relay hears the phone's level and the server shows it (app.event.attendee.talking):
    while it speaks, not while muted (though it keeps sending), and not once it falls quiet."""
    import asyncio
    import threading

    import socketio  # type: ignore[import-untyped]  # (python-socketio ships no types)

    seen: list[tuple[float, str, bool]] = []
    stop = threading.Event()
    subscribed = threading.Event()

    async def console(url: str) -> None:
        client = socketio.AsyncClient()

        async def on_event(data: dict[str, Any]) -> None:
            if data.get("category") == "app.event.attendee.talking":
                content = data["content"]
                seen.append((time.monotonic(), content["attendeeId"], content["talking"]))

        client.on("MEDIA_SESSION_RESPONSE", on_event, namespace="/chat")
        await client.connect(url, namespaces=["/chat"], auth={"token": MODERATOR})
        topic = {"channel": {"type": "topic", "_id": "demo"}}
        await client.call("SUBSCRIBE_CHANNEL", topic, namespace="/chat", timeout=5)
        subscribed.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await client.disconnect()

    def said(attendee: str, talking: bool, since: float, timeout: float = 3.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [at for at, who, t in seen if who == attendee and t is talking and at >= since]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no talking={talking} for {attendee} since {since}: {seen}")

    with running_daemon(tmp_path) as daemon:
        listener = threading.Thread(target=asyncio.run, args=(console(daemon.api_url()),))
        listener.start()
        try:
            assert subscribed.wait(10), "the console did not subscribe"
            with members(daemon, ("Phone A", A)) as (a,):
                began = time.monotonic()
                said(a.attendee, True, began)
                moderator = Moderator(daemon)
                moderator.mute(a.attendee)  # it keeps sending: the meeting hears nothing
                muted = said(a.attendee, False, began)
                time.sleep(1.0)
                assert not [t for at, who, t in seen if who == a.attendee and at > muted and t]
                moderator.mute(a.attendee, audio=True)
                resumed = said(a.attendee, True, muted)
                a.talker.paused = True  # silence: no more packets at all
                said(a.attendee, False, resumed, timeout=3.0)
        finally:
            stop.set()
            listener.join(5)
