"""The per-call RTP relay end to end (docs/media.md): the real daemon, real peers (baresip, sipp, a
real ``spaces-bridge server`` behind :class:`~tests.interop.remote.FaultProxy`), and phones and a
meeting mixer of the test's own on plain UDP sockets (:mod:`tests.interop.rtpphone`), so that
what reaches each leg is read byte by byte.

The meeting-leg tests run the daemon against a remote server whose join answers the proxy
completes with ``media`` (a server with a media plane, docs/conference-api.md) naming a socket of
the test, which stands for the meeting's mixer (the server's own ``app.event.attendee.media`` events,
if it runs a mixer, are held back): what the meeting leg carries is read there, packet by packet.
The other tests use the embedded server, whose own mixer (if any) may send the phone the meeting's
audio around the prompts: prompts are found in the stream, not assumed to be all of it.
"""

from __future__ import annotations

import itertools
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest

from bridge.media.analysis import rms_dbfs
from bridge.media.g711 import ULAW
from tests.interop.baresip import establish, running_baresip, wait_for
from tests.interop.harness import (
    LOOPBACK,
    ROOT,
    Daemon,
    free_port,
    options_ping,
    running_daemon,
)
from tests.interop.meeting import Moderator, phone_call
from tests.interop.remote import TOKEN_ENV, FaultProxy, conference_server, remote_config
from tests.interop.rtpphone import (
    Address,
    Packet,
    RtpSocket,
    SipPhone,
    Talker,
    calling,
    rtp,
    tone,
)
from tests.interop.scenario import Phone
from tests.interop.test_baresip import received_offers
from tests.interop.test_ops import get, sample

pytestmark = pytest.mark.interop

PROMPTS = ROOT / "bridge" / "media" / "prompts"
MUTED = (PROMPTS / "muted.pcmu").read_bytes()
UNMUTED = (PROMPTS / "unmuted.pcmu").read_bytes()
FRAME = 160
QUIET = -50.0
"""The prompts' RMS is about -35 dBFS; G.711 silence about -127. Anything above this is heard."""
FOREIGN = bytes(range(FRAME))
"""A stranger's payload: loud, and unlike the tone and silence (so it is recognised if relayed)."""


# --- helpers --------------------------------------------------------------------------------------


def metrics(daemon: Daemon) -> str:
    status, text = get(daemon.ops_url + "/metrics")
    assert status == 200, text
    return text


def dropped(daemon: Daemon, reason: str) -> float:
    return sample(metrics(daemon), "spaces_bridge_media_dropped_total", reason=reason)


def event(daemon: Daemon, kind: str) -> float:
    return sample(metrics(daemon), "spaces_bridge_media_events_total", kind=kind)


def wait_metric(
    daemon: Daemon, read: Callable[[Daemon], float], wanted: float, timeout: float = 5.0
) -> None:
    """Wait until ``read(daemon) == wanted`` (the daemon reads datagrams at its own pace)."""
    deadline = time.monotonic() + timeout
    while (got := read(daemon)) != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"metric is {got}, not {wanted}:\n{metrics(daemon)[-3000:]}")
        time.sleep(0.02)


def attendee_of(moderator: Moderator, name: str = "RTP Phone") -> str:
    return str(moderator.phone(name)["attendeeId"])


def find_prompt(packets: list[Packet], prompt: bytes) -> list[Packet] | None:
    """The run of ``packets`` that carries every 20 ms frame of the recording ``prompt``, byte
    for byte and in order (the meeting's audio may come before and after it), if any."""
    frames = [prompt[i : i + FRAME] for i in range(0, len(prompt), FRAME)]
    payloads = [p.data[12:] for p in packets]
    for start in range(len(packets) - len(frames) + 1):
        if payloads[start : start + len(frames)] == frames:
            return packets[start : start + len(frames)]
    return None


def wait_prompt(
    media: RtpSocket, prompt: bytes, since: float = 0.0, timeout: float = 5.0
) -> list[Packet]:
    """The packets of one whole prompt, received after ``since``, in one continuous stream of
    ours."""
    media.wait(
        lambda packets: find_prompt([p for p in packets if p.at >= since], prompt) is not None,
        timeout,
        "the whole prompt, byte for byte",
    )
    packets = find_prompt(media.received(since), prompt)
    assert packets is not None
    assert {p.payload_type for p in packets} == {0}
    assert len({p.ssrc for p in packets}) == 1
    assert all((b.sequence - a.sequence) % 65536 == 1 for a, b in itertools.pairwise(packets))
    assert all((b.timestamp - a.timestamp) % 2**32 == FRAME for a, b in itertools.pairwise(packets))
    return packets


def level(packets: list[Packet]) -> float:
    """The RMS over every packet's payload, decoded as µ-law (dBFS)."""
    return rms_dbfs(ULAW.samples(b"".join(p.payload for p in packets)))


def in_order(packets: list[Packet]) -> list[Packet]:
    """``packets`` of one stream in sequence order (less than half the sequence space)."""
    if not packets:
        return []
    first = min(packets, key=lambda p: p.at).sequence
    return sorted(packets, key=lambda p: (p.sequence - first + 32768) % 65536)


def consecutive(packets: list[Packet]) -> bool:
    return all((b.sequence - a.sequence) % 65536 == 1 for a, b in itertools.pairwise(packets))


@dataclass
class Meeting:
    """The daemon against a remote server with a media plane: ``mixer`` is where the server says
    the meeting's audio goes; the moderator talks to the server itself."""

    daemon: Daemon
    proxy: FaultProxy
    moderator: Moderator
    mixer: RtpSocket

    def leg(self, index: int = 0) -> Address:
        """The meeting-leg address the bridge offered in its ``index``-th join."""
        rtp_address = self.proxy.join_offers[index]["rtp"]
        assert isinstance(rtp_address, dict)
        return str(rtp_address["ip"]), int(rtp_address["port"])

    def from_leg(self, index: int = 0, since: float = 0.0) -> list[Packet]:
        """What the mixer received from the ``index``-th call's meeting leg."""
        source = self.leg(index)
        return [p for p in self.mixer.received(since) if p.source == source]


@contextmanager
def meeting_with_media(
    workdir: pathlib.Path, *, media_host: str | None = None
) -> Iterator[Meeting]:
    port = free_port()
    server_url = f"http://{LOOPBACK}:{port}"
    (workdir / "bridge").mkdir()
    with (
        conference_server(workdir, port),
        FaultProxy(server_url) as proxy,
        RtpSocket() as mixer,
    ):
        proxy.join_media = {
            "rtp": {"ip": LOOPBACK, "port": mixer.port},
            "codec": "PCMU",
            "payloadType": 0,
        }
        with running_daemon(
            workdir / "bridge",
            extra_config=remote_config(proxy.url),
            env=TOKEN_ENV,
            media_host=media_host,
        ) as daemon:
            moderator = Moderator(daemon)
            moderator.base = server_url
            yield Meeting(daemon, proxy, moderator, mixer)


# --- 1. keys as RFC 4733 events from a real softphone ---------------------------------------------


def test_baresip_keys_in_rtp_mute_and_raise_the_hand(tmp_path: pathlib.Path) -> None:
    with running_daemon(tmp_path) as daemon, running_baresip(tmp_path) as phone:
        establish(daemon, phone, f"sip:demo@{LOOPBACK}:{daemon.port}")
        invite = re.search(r"^INVITE sip:demo@.*?(?=\x1b\[|\Z)", phone.log(), re.M | re.S)
        assert invite is not None and "telephone-event/8000" in invite[0], phone.explain()
        moderator = Moderator(daemon)
        attendee = str(moderator.phone(None)["attendeeId"])

        # baresip sends the two keys as two RFC 4733 events, about 240 ms apart
        phone.command("sndcode", "*6")
        moderator.wait_for(lambda _: moderator.entry(attendee)["mediaState"]["audio"] is False)  # type: ignore[index]
        wait_for(lambda: received_offers(phone) == ["sendonly"], 5, phone.explain)

        # Muted, baresip answers recvonly and sends no RTP (no events either): the moderator
        # unmutes, and the phone can press keys again.
        moderator.mute(attendee, audio=True)
        wait_for(lambda: received_offers(phone) == ["sendonly", "sendrecv"], 5, phone.explain)
        phone.command("sndcode", "*9")
        moderator.wait_for(lambda _: moderator.entry(attendee)["hand"] == "raised")  # type: ignore[index]

        # The keys came in RTP, not in INFO, and were counted once each.
        keys = re.findall(r"\bdtmf\b.*", daemon.log())
        assert len(keys) == 4 and all("source=rtp" in line for line in keys), keys
        assert "\nINFO sip:" not in phone.log()
        assert event(daemon, "key") == 4
        phone.hangup()
        daemon.wait_log("call ended")


# --- 2. a prompt reaches the phone ----------------------------------------------------------------


def test_a_phone_muted_by_the_moderator_hears_you_are_muted(tmp_path: pathlib.Path) -> None:
    with (
        running_daemon(tmp_path) as daemon,
        RtpSocket() as media,
        calling((daemon.host, daemon.port), media.port) as phone,
    ):
        moderator = Moderator(daemon)
        attendee = attendee_of(moderator)
        moderator.mute(attendee)
        packets = wait_prompt(media, MUTED)
        assert phone.wait_offers(1) == ["sendonly"]
        assert level(packets) > QUIET
        assert {p.source for p in packets} == {phone.bridge_media}
        # At the prompt clock's pace: 41 frames over 0.8 s, not in a burst.
        span = packets[-1].at - packets[0].at
        assert 0.6 < span < 2.5, span

        since = time.monotonic()
        moderator.mute(attendee, audio=True)
        assert level(wait_prompt(media, UNMUTED, since)) > QUIET
        assert phone.wait_offers(2) == ["sendonly", "sendrecv"]
        # Both prompts in one stream of ours: the sequence runs on from the first prompt.
        assert consecutive(media.received())


def test_an_operators_recording_is_played_and_sighup_brings_in_a_new_one(
    tmp_path: pathlib.Path,
) -> None:
    """``[media] prompts_dir``: the phone hears the operator's "you are muted" instead of ours,
    and after the file is replaced and SIGHUP sent, the new one, in the same call."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    first, second = bytes(range(1, 161)) * 8, bytes(range(96, 256)) * 6
    (folder / "muted.pcmu").write_bytes(first)
    with (
        running_daemon(tmp_path, media_config=f'prompts_dir = "{folder}"\n') as daemon,
        RtpSocket() as media,
        calling((daemon.host, daemon.port), media.port) as phone,
    ):
        moderator = Moderator(daemon)
        attendee = attendee_of(moderator)
        moderator.mute(attendee)
        wait_prompt(media, first)
        assert find_prompt(media.received(), MUTED) is None  # not ours
        since = time.monotonic()
        moderator.mute(attendee, audio=True)
        wait_prompt(media, UNMUTED, since)  # a prompt the folder does not have stays ours
        assert phone.wait_offers(2) == ["sendonly", "sendrecv"]

        (folder / "muted.pcmu").write_bytes(second[:-1])  # not whole frames: refused, named
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("reload refused", r"media\.prompts_dir", r"muted\.pcmu is 959 bytes")
        (folder / "muted.pcmu").write_bytes(second)
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(
            "configuration reloaded", r"applied=.*media\.prompts_dir", r"needs_restart=\[\]"
        )
        since = time.monotonic()
        moderator.mute(attendee)
        wait_prompt(media, second, since)
        assert find_prompt(media.received(since), first) is None


# --- 3. latching ----------------------------------------------------------------------------------


def test_the_bridge_answers_where_the_phone_sends_from_after_three_packets(
    tmp_path: pathlib.Path,
) -> None:
    with (
        running_daemon(tmp_path) as daemon,
        RtpSocket() as announced,
        RtpSocket() as actual,  # a NAT: the phone's packets come from another port
        calling((daemon.host, daemon.port), announced.port) as phone,
    ):
        moderator = Moderator(daemon)
        attendee = attendee_of(moderator)
        bridge = phone.bridge_media
        ssrc = 0x1234ABCD
        for n in range(2):
            actual.send(rtp(0, 100 + n, 160 * n, ssrc, tone(FRAME)), bridge)
        wait_metric(daemon, lambda d: dropped(d, "stranger"), 2)  # on probation
        time.sleep(0.2)
        assert event(daemon, "latch") == 0
        actual.send(rtp(0, 102, 320, ssrc, tone(FRAME)), bridge)  # the third in sequence
        wait_metric(daemon, lambda d: event(d, "latch"), 1)

        moderator.mute(attendee)
        wait_prompt(actual, MUTED)
        assert phone.wait_offers(1) == ["sendonly"]
        # Nothing to the SDP address once latched (a meeting's audio may have gone there
        # before): one stream of ours, the SDP address's part of it before the latch.
        before, after = in_order(announced.received()), in_order(actual.received())
        assert consecutive([*before, *after]), ([p.sequence for p in before], after[0].sequence)
        assert dropped(daemon, "stranger") == 2


# --- 4. the meeting leg, mute enforcement and normalisation --------------------------------------


def test_a_muted_phone_that_keeps_sending_reaches_nothing_of_the_meeting(
    tmp_path: pathlib.Path,
) -> None:
    with (
        meeting_with_media(tmp_path) as meeting,
        RtpSocket() as media,
        calling((meeting.daemon.host, meeting.daemon.port), media.port) as phone,
        Talker(media, phone.bridge_media) as talker,
    ):
        daemon, mixer = meeting.daemon, meeting.mixer
        mixer.wait(lambda _: sum(p.loud for p in meeting.from_leg()) >= 10, 5, "the tone")
        attendee = attendee_of(meeting.moderator)

        muted_at = time.monotonic()
        meeting.moderator.mute(attendee)  # on the server, behind the bridge's back
        # The phone answers the sendonly re-INVITE, but its talker goes on sending the tone.
        assert phone.wait_offers(1) == ["sendonly"]
        heard = wait_prompt(media, MUTED, muted_at)
        time.sleep(2.5)
        muted_for = time.monotonic() - muted_at
        assert dropped(daemon, "muted") >= 100
        meeting.moderator.mute(attendee, audio=True)
        assert phone.wait_offers(2) == ["sendonly", "sendrecv"]
        unmuted_at = time.monotonic()
        mixer.wait(
            lambda _: sum(p.loud for p in meeting.from_leg(since=unmuted_at)) >= 10,
            5,
            "the tone again",
        )
        talker.stop()

        # One continuous meeting-leg stream: our SSRC, 20 ms PCMU payloads, no sequence gap...
        stream = meeting.from_leg()
        assert {p.payload_type for p in stream} == {0}
        assert {len(p.payload) for p in stream} == {FRAME}
        assert len({p.ssrc for p in stream}) == 1
        assert consecutive(stream)
        # ...whose shape is the tone, then while muted only keepalives (one silent packet a
        # second: neither the tone nor the prompt the phone heard meanwhile, nor a stream of
        # silence), then the tone again.
        shape = "".join("T" if p.loud else "s" for p in stream)
        runs = re.fullmatch(r"s*(T{10,})(s+)(T{10,})", shape)
        assert runs is not None, shape
        assert 2 <= len(runs[2]) <= muted_for + 1, (shape, muted_for)
        assert level(heard) > QUIET


@pytest.mark.parametrize("ptime", [10, 30])
def test_any_packet_time_reaches_the_meeting_as_20_ms_packets(
    tmp_path: pathlib.Path, ptime: int
) -> None:
    with (
        meeting_with_media(tmp_path) as meeting,
        RtpSocket() as media,
        calling((meeting.daemon.host, meeting.daemon.port), media.port) as phone,
    ):
        with Talker(media, phone.bridge_media, ptime=ptime) as talker:
            meeting.mixer.wait(
                lambda _: sum(p.loud for p in meeting.from_leg()) >= 50, 5, "a second of tone"
            )
        time.sleep(0.1)
        stream = meeting.from_leg()
        tone_packets = [p for p in stream if p.loud]
        assert {len(p.payload) for p in stream} == {FRAME}
        assert consecutive(stream)
        # 20 ms of media a packet: the timestamps advance 160 a packet while the tone flows.
        assert all(
            (b.timestamp - a.timestamp) % 2**32 == FRAME
            for a, b in itertools.pairwise(tone_packets)
        )
        # Every sample the phone sent arrived, in order, unchanged (but for the last partial
        # frame, which waits for more): the stream is the tone, from its first sample.
        sent = talker.sent * 8 * ptime
        assert len(tone_packets) == sent // FRAME, (len(tone_packets), sent)
        assert b"".join(p.payload for p in tone_packets) == tone(len(tone_packets) * FRAME)


def test_a_reinvite_to_a_new_port_keeps_both_streams_continuous(tmp_path: pathlib.Path) -> None:
    with (
        meeting_with_media(tmp_path) as meeting,
        RtpSocket() as first,
        RtpSocket() as second,
        calling((meeting.daemon.host, meeting.daemon.port), first.port) as phone,
        Talker(first, phone.bridge_media) as talker,
        # The meeting's audio: the mixer sends from the address the bridge was told.
        Talker(meeting.mixer, meeting.leg()) as _mix,
    ):
        mixer = meeting.mixer
        mixer.wait(lambda _: sum(p.loud for p in meeting.from_leg()) >= 25, 5, "the tone")
        first.wait(lambda ps: sum(p.loud for p in ps) >= 25, 5, "the meeting's audio")

        # The phone moves to a new RTP port, as after a transfer: it stops sending from the old
        # one, re-offers, and starts a new stream (SSRC, sequence, timestamps) from the new one.
        talker.paused = True
        time.sleep(0.1)
        answer = phone.reinvite(second.port)
        assert answer.direction == "sendrecv"
        talker.move(second, phone.bridge_media)
        talker.paused = False
        moved = time.monotonic()
        mixer.wait(
            lambda _: sum(p.loud for p in meeting.from_leg(since=moved)) >= 25, 5, "the tone after"
        )
        second.wait(lambda ps: sum(p.loud for p in ps) >= 25, 5, "the meeting's audio after")
        talker.stop()
        _mix.stop()
        time.sleep(0.1)

        # The meeting leg never noticed: one SSRC, no sequence gap.
        stream = meeting.from_leg()
        assert len({p.ssrc for p in stream}) == 1
        assert consecutive(stream), [p.sequence for p in stream]
        # The new address was the phone's at once (the SDP vouches for it: no probation).
        assert dropped(meeting.daemon, "stranger") == 0
        assert event(meeting.daemon, "latch") == 2
        # Nor did the phone notice: the meeting's audio went on in one stream, to the old port
        # until the re-INVITE and to the new one after.
        before, after = in_order(first.received()), in_order(second.received())
        assert len({p.ssrc for p in [*before, *after]}) == 1
        assert consecutive([*before, *after]), [p.sequence for p in [*before, *after]]


# --- 5. bad input ---------------------------------------------------------------------------------


def test_bad_input_is_dropped_counted_and_spares_the_other_calls(tmp_path: pathlib.Path) -> None:
    with ExitStack() as stack:
        meeting = stack.enter_context(meeting_with_media(tmp_path))
        daemon = meeting.daemon
        target = (daemon.host, daemon.port)
        victim_media = stack.enter_context(RtpSocket())
        victim = stack.enter_context(calling(target, victim_media.port, name="Victim"))
        bystander_media = stack.enter_context(RtpSocket())
        bystander = stack.enter_context(calling(target, bystander_media.port, name="Bystander"))
        talker = stack.enter_context(Talker(victim_media, victim.bridge_media))
        stack.enter_context(Talker(bystander_media, bystander.bridge_media))
        stranger = stack.enter_context(RtpSocket())
        meeting.mixer.wait(
            lambda _: all(sum(p.loud for p in meeting.from_leg(i)) >= 10 for i in (0, 1)),
            5,
            "both calls' tone",
        )
        port = victim.bridge_media
        assert port != bystander.bridge_media

        for n in range(10):
            victim_media.send(b"not RTP at all %d" % n, port)
            victim_media.send(b"\x40" + rtp(0, n, 0, 1, tone(FRAME))[1:], port)  # version 1
            victim_media.send(rtp(0, n, 0, 5 + n, tone(FRAME)), port)  # not the latched SSRC
            victim_media.send(rtp(0, n, 0, talker.ssrc, b"\xff" * 1600), port)  # > 1,500 bytes
            victim_media.send(rtp(13, n, 0, talker.ssrc, b"\x40"), port)  # comfort noise
        for n in range(10):  # in sequence, one SSRC: it would latch if the phone were silent
            stranger.send(rtp(0, n, 160 * n, 7, FOREIGN), port)
        wait_metric(daemon, lambda d: dropped(d, "not_rtp"), 20)
        wait_metric(daemon, lambda d: dropped(d, "too_big"), 10)
        wait_metric(daemon, lambda d: dropped(d, "payload_type"), 10)
        wait_metric(daemon, lambda d: dropped(d, "stranger"), 20)

        # A flood at the victim's port, from a stranger, as fast as one socket sends.
        flood_from = time.monotonic()
        flood = rtp(0, 0, 0, 9, FOREIGN)
        answered: list[bytes | None] = []
        pings = threading.Thread(
            target=lambda: answered.extend(options_ping(LOOPBACK, daemon.port, 2) for _ in range(3))
        )
        pings.start()
        for _ in range(20_000):
            stranger.sock.sendto(flood, port)
        pings.join(10)

        assert len(answered) == 3 and all(answered), "OPTIONS went unanswered during the flood"
        assert options_ping(LOOPBACK, daemon.port) is not None
        text = metrics(daemon)
        stray = sample(text, "spaces_bridge_media_dropped_total", reason="stranger")
        assert stray > 1000, text  # the flood reached the relay, and was dropped as strangers'
        # Nobody's audio stopped or skipped: both calls' tone reached the meeting through it.
        meeting.mixer.wait(
            lambda _: all(
                sum(p.loud for p in meeting.from_leg(i, since=flood_from)) >= 25 for i in (0, 1)
            ),
            5,
            "both calls' tone after the flood",
        )
        assert consecutive(meeting.from_leg(0)) and consecutive(meeting.from_leg(1))
        # No stranger took a call: one latch a call, and nothing of theirs reached the meeting.
        assert event(daemon, "latch") == 2
        assert not [p for p in meeting.mixer.received() if FOREIGN in p.data]
        # The bystander still hears its prompts.
        since = time.monotonic()
        meeting.moderator.mute(attendee_of(meeting.moderator, "Bystander"))
        wait_prompt(bystander_media, MUTED, since)
        assert daemon.process is not None and daemon.process.poll() is None


# --- 6. port exhaustion ---------------------------------------------------------------------------


def media_block(count: int) -> tuple[int, int]:
    """``count`` blocks of four ports, all free now, from an even port."""
    for _ in range(100):
        base = free_port(both=False) & ~1
        ports = range(base, base + 4 * count)
        sockets = []
        try:
            for p in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind((LOOPBACK, p))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base, base + 4 * count - 1
    raise RuntimeError("no free port range")


def test_the_third_call_of_a_two_call_range_gets_503_media_ports_exhausted(
    tmp_path: pathlib.Path,
) -> None:
    with ExitStack() as stack:
        daemon = stack.enter_context(running_daemon(tmp_path, media_ports=media_block(2)))
        target = (daemon.host, daemon.port)
        first = stack.enter_context(calling(target, free_port(both=False), name="First"))
        stack.enter_context(calling(target, free_port(both=False), name="Second"))
        refused = Phone("Third").refused(
            503, header="SIP/2.0 503 Media Ports Exhausted.*Retry-After: *[0-9]+"
        )
        with phone_call(daemon, refused, tmp_path, name="third"):
            pass
        daemon.wait_log("call refused", "status=503")
        assert event(daemon, "refused_exhausted") == 1
        moderator = Moderator(daemon)
        names = {a["displayName"] for a in moderator.details()["attendees"]}
        assert names == {"First", "Second"}  # refused before it joined: no ghost in the roster

        # A freed block takes the next call.
        first.bye()
        with SipPhone(target, name="Fourth") as fourth:
            assert fourth.invite(free_port(both=False)).status == 200
            fourth.bye()
        assert event(daemon, "refused_exhausted") == 1


def test_check_config_warns_when_max_dialogs_exceeds_the_media_range(
    tmp_path: pathlib.Path,
) -> None:
    def check(max_dialogs: int | None) -> subprocess.CompletedProcess[str]:
        config = tmp_path / f"bridge-{max_dialogs}.toml"
        limits = "" if max_dialogs is None else f"\n[limits]\nmax_dialogs = {max_dialogs}\n"
        config.write_text("[media]\nport_min = 40000\nport_max = 40007\n" + limits)
        return subprocess.run(
            [sys.executable, "-m", "bridge", "check-config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    over = check(3)
    assert over.returncode == 0, over.stderr
    assert re.search(
        r"warning: .*limits\.max_dialogs: admits 3 calls, but media\.port_min\.\.port_max "
        r"carries 2 .*503 Media Ports Exhausted",
        over.stderr,
    ), over.stderr
    within = check(2)
    assert within.returncode == 0 and "warning" not in within.stderr, within.stderr
    # max_dialogs left at its default (60,000, for signalling-only nodes): the range is the bound
    # by design, and the file contradicts nothing.
    default = check(None)
    assert default.returncode == 0 and "warning" not in default.stderr, default.stderr


# --- 7. IPv6 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sip_host", ["::1", LOOPBACK], ids=["sip-ipv6", "sip-ipv4"])
def test_an_ipv6_offer_is_answered_in_ipv6_and_its_audio_flows(
    tmp_path: pathlib.Path, sip_host: str
) -> None:
    with (
        running_daemon(tmp_path, host=sip_host, media_host="::1") as daemon,
        RtpSocket("::1") as media,
        SipPhone((daemon.host, daemon.port), host=sip_host, media_host="::1") as phone,
    ):
        answer = phone.invite(media.port)
        assert answer.status == 200, answer
        assert re.search(r"^c=IN IP6 ::1\s*$", answer.body, re.M), answer.body
        host, port = phone.bridge_media
        assert host == "::1"
        # The relay takes the phone's IPv6 audio and plays it a prompt back over IPv6.
        with Talker(media, (host, port)):
            wait_metric(daemon, lambda d: event(d, "latch"), 1)
            moderator = Moderator(daemon)
            moderator.mute(attendee_of(moderator))
            packets = wait_prompt(media, MUTED)
        assert {p.source for p in packets} == {("::1", port)}
        phone.bye()


def test_an_ipv6_offer_to_an_ipv4_relay_spares_the_other_calls(tmp_path: pathlib.Path) -> None:
    """The relay binds one address family ([media] host): a phone whose SDP names an IPv6 address
    gets our IPv4 one, and what the relay cannot send to that address must not stop the timers
    that every call shares (prompts, keepalives, reports). A dual-stack phone that sends from
    IPv4 is latched there and hears its prompt."""
    with ExitStack() as stack:
        daemon = stack.enter_context(running_daemon(tmp_path))
        target = (daemon.host, daemon.port)
        announced = stack.enter_context(RtpSocket("::1"))
        dual = stack.enter_context(SipPhone(target, media_host="::1", name="Dual Stack"))
        answer = dual.invite(announced.port)
        assert answer.status == 200, answer
        assert re.search(r"^c=IN IP4 127\.0\.0\.1\s*$", answer.body, re.M), answer.body
        other_media = stack.enter_context(RtpSocket())
        stack.enter_context(calling(target, other_media.port, name="Other"))
        moderator = Moderator(daemon)

        since = time.monotonic()
        moderator.mute(attendee_of(moderator, "Dual Stack"))  # a prompt for an unreachable address
        time.sleep(1.5)  # and a housekeeping turn: a keepalive, an RTCP report
        moderator.mute(attendee_of(moderator, "Other"))
        wait_prompt(other_media, MUTED, since)

        # The dual-stack phone's IPv4 packets are latched, and its prompts go there.
        actual = stack.enter_context(RtpSocket())
        stack.enter_context(Talker(actual, dual.bridge_media))
        wait_metric(daemon, lambda d: event(d, "latch"), 1)
        since = time.monotonic()
        moderator.mute(attendee_of(moderator, "Dual Stack"), audio=True)
        wait_prompt(actual, UNMUTED, since)
        assert announced.received() == []
        dual.bye()
    assert "Traceback" not in daemon.log(), daemon.log()[-3000:]


def test_a_meeting_endpoint_of_the_other_address_family_leaves_the_call_up(
    tmp_path: pathlib.Path,
) -> None:
    """A relay on IPv6 and a server that names an IPv4 mixer: the meeting leg cannot be connected,
    which is said in the log; the call is answered and its phone leg works."""
    with (
        meeting_with_media(tmp_path, media_host="::1") as meeting,
        RtpSocket("::1") as media,
        SipPhone((meeting.daemon.host, meeting.daemon.port), media_host="::1") as phone,
    ):
        answer = phone.invite(media.port)
        assert answer.status == 200, answer
        meeting.daemon.wait_log("meeting media endpoint unreachable", r"endpoint=127\.0\.0\.1:")
        since = time.monotonic()
        meeting.moderator.mute(attendee_of(meeting.moderator))
        wait_prompt(media, MUTED, since)
        phone.bye()
