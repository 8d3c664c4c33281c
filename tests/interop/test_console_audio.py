"""The console's "Join audio" against the real daemon, its Janus and Debian's Chromium: the page's
fake microphone plays a 1000 Hz tone from a WAV file while a phone of the test's own
(:mod:`tests.interop.rtpphone`) sends 440 Hz. The phone hears the page's tone and the page hears
the phone's (a WebAudio analyser on the remote track); the page's speaking dot lights; a
moderator's mute through the REST API silences the page at the mixer, and renegotiating from the
page (an ICE restart) does not undo it; a killed Janus ends the page's audio, which joins again
(docs/mixer.md, Browsers)."""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import re
import signal
import socket
import struct
import time
import wave
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from bridge.media.analysis import dominant_frequency, rms_dbfs
from bridge.media.g711 import ULAW
from tests.interop.harness import MODERATOR, Daemon, running_daemon
from tests.interop.meeting import Moderator
from tests.interop.rtpphone import Packet, RtpSocket, Talker, calling
from tests.interop.test_console import CHROMIUM, FLAGS

pytestmark = pytest.mark.interop

if TYPE_CHECKING:
    import playwright.sync_api as playwright_sync
    from playwright.sync_api import Browser, Page
else:
    playwright_sync = pytest.importorskip("playwright.sync_api")

PAGE_TONE = 1000.0
PHONE_TONE = 440.0
CANDIDATES = (250.0, PHONE_TONE, 600.0, 800.0, PAGE_TONE, 1300.0, 2000.0, 3000.0)
"""Where the phone looks for the dominant frequency of what it hears."""
QUIET = -55.0
"""Below this RMS (dBFS) a stretch of what the phone hears is silence."""

# Records every RTCPeerConnection the page makes, before the console's own script runs: the
# test reaches the page's PeerConnection without the console exposing it.
RECORD_PEERS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__peers.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""

# The dominant frequency of the page's remote audio (what the mixer sends it), from a WebAudio
# analyser: the strongest FFT bin between 100 Hz and 4 kHz, with its level in dBFS.
DOMINANT = """
async () => {
  const stream = document.getElementById("meeting-audio").srcObject;
  if (!stream) return null;
  const context = new AudioContext();
  await context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  context.createMediaStreamSource(stream).connect(analyser);
  await new Promise((done) => setTimeout(done, 600));
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  const width = context.sampleRate / analyser.fftSize;
  let best = -1;
  for (let i = Math.ceil(100 / width); i < 4000 / width; i++) {
    if (best < 0 || bins[i] > bins[best]) best = i;
  }
  await context.close();
  return { frequency: best * width, level: bins[best], width };
}
"""


def tone_wav(path: pathlib.Path, freq: float = PAGE_TONE, seconds: int = 2) -> pathlib.Path:
    """A mono 48 kHz 16-bit WAV of a sine at -10 dBFS peak: a whole number of periods, so that
    Chromium's looping of the file makes no click."""
    rate = 48000
    amplitude = 32767 * 10 ** (-10 / 20)
    frames = b"".join(
        struct.pack("<h", round(amplitude * math.sin(2 * math.pi * freq * i / rate)))
        for i in range(rate * seconds)
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


@pytest.fixture
def browser(tmp_path: pathlib.Path) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed (make test installs it with apt-get)")
    flags = [
        *FLAGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",  # the permission prompt, answered yes
        f"--use-file-for-fake-audio-capture={tone_wav(tmp_path / 'tone.wav')}",
        # Chromium leaves loopback out of its ICE candidates unless told: the mixer is there.
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=flags, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def daemon(tmp_path: pathlib.Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as d:
        yield d


@contextlib.contextmanager
def phone_in_meeting(daemon: Daemon) -> Iterator[RtpSocket]:
    """A phone in the demo meeting, sending the 440 Hz tone; its RTP socket records what the
    bridge relays to it from the mixer."""
    with (
        RtpSocket() as sock,
        calling((daemon.host, daemon.port), sock.port, name="Desk Phone") as phone,
        Talker(sock, phone.bridge_media),
    ):
        daemon.wait_log("phone added to the mix")
        yield sock


def local(address: str) -> bool:
    """Whether ``address`` (IPv4) is one of this machine's: a UDP socket binds to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def heard(packets: list[Packet]) -> tuple[float, float]:
    """The dominant frequency among :data:`CANDIDATES` and the RMS level of what a phone heard."""
    samples = [s for p in packets for s in ULAW.samples(p.payload)]
    return dominant_frequency(samples, 8000, CANDIDATES), rms_dbfs(samples)


def hears(sock: RtpSocket, freq: float | None, seconds: float, timeout: float) -> None:
    """Wait until the last ``seconds`` the phone received are ``freq`` (None: silence)."""
    deadline = time.monotonic() + timeout
    found: tuple[float, float] = (0.0, 0.0)
    while time.monotonic() < deadline:
        now = time.monotonic()
        recent = sock.received(now - seconds)
        if len(recent) >= seconds * 40:  # most of 50 packets a second
            found = heard(recent)
            if freq is None and found[1] < QUIET:
                return
            if freq is not None and found[0] == freq and found[1] > -30:
                return
        time.sleep(0.1)
    raise AssertionError(f"the phone did not hear {freq or 'silence'}: (Hz, dBFS) {found}")


def stays_silent(sock: RtpSocket, seconds: float) -> None:
    """Everything the phone receives in the next ``seconds`` is silence."""
    start = time.monotonic()
    time.sleep(seconds)
    packets = sock.received(start)
    assert len(packets) >= seconds * 40, f"{len(packets)} packets in {seconds}s"
    loud = [round(p.level) for p in packets if p.level > QUIET]
    assert not loud, f"{len(loud)} of {len(packets)} packets were heard: {loud[:10]} dBFS"


def open_console(browser: Browser, daemon: Daemon) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.add_init_script(RECORD_PEERS)
    page.goto(f"{daemon.api_url()}/?space=demo")
    page.get_by_label("Moderator token").fill(MODERATOR)
    page.get_by_role("button", name="Sign in").click()
    playwright_sync.expect(page.locator("#connection")).to_have_text("live")
    return page, errors


def join_audio(page: Page, moderator: Moderator) -> dict[str, Any]:
    """Click "Join audio" and wait for the page's attendee and its connected audio."""
    page.get_by_role("button", name="Join audio").click()
    playwright_sync.expect(page.locator("#audio-status")).to_have_text(
        "In the meeting's audio.", timeout=10000
    )
    web: dict[str, Any] = moderator.wait_for(
        lambda d: next((a for a in d["attendees"] if a["attendeeType"] == "web"), None),
        5,
        "the page's attendee",
    )
    return web


def test_the_console_and_a_phone_hear_each_other(
    browser: Browser, daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    with phone_in_meeting(daemon) as sock:
        moderator = Moderator(daemon)
        page, errors = open_console(browser, daemon)
        began = time.monotonic()
        web = join_audio(page, moderator)
        joined = time.monotonic() - began
        row = page.locator(f'tr[data-attendee="{web["attendeeId"]}"]')
        playwright_sync.expect(row).to_have_class("self")
        playwright_sync.expect(row.locator("td.audio")).to_have_text("unmuted")

        # Janus's answer: Opus at the room's 8 kHz, the audio-level extension (for talking), and
        # host candidates only (no STUN, no TURN), all of them this machine's own addresses:
        # 1.1.2 never gathers on loopback, so ice_enforce_list = "lo" matches nothing and libnice
        # falls back to every other interface (docs/mixer.md, Browsers).
        answer = page.evaluate("() => window.__peers[0].remoteDescription.sdp")
        assert re.search(r"a=rtpmap:\d+ opus/48000/2", answer), answer
        assert "maxplaybackrate=8000" in answer and "ssrc-audio-level" in answer, answer
        candidates = re.findall(r"a=candidate:\S+ \d \S+ \d+ (\S+) \d+ typ (\S+)", answer)
        assert candidates and {kind for _, kind in candidates} == {"host"}, answer
        assert all(local(address) for address, _ in candidates if "." in address), answer

        hears(sock, PAGE_TONE, 1.0, 10)
        result = page.evaluate(DOMINANT)
        assert result is not None, "no remote audio in the page"
        assert abs(result["frequency"] - PHONE_TONE) <= result["width"], result
        assert result["level"] > -60, result

        # Janus says the page talks (its audio-level extension); the dot shows it.
        playwright_sync.expect(row.locator(".dot")).to_have_class("dot talking")
        page.screenshot(path=str(tmp_path / "console-audio.png"), full_page=True)

        page.get_by_role("button", name="Leave audio").click()
        moderator.wait_for(
            lambda d: not any(a["attendeeType"] == "web" for a in d["attendees"]),
            5,
            "the page's attendee gone",
        )
        hears(sock, None, 0.5, 5)
        daemon.wait_log("browser audio up")
        assert errors == []
        page.close()  # else the daemon's stop waits for the page's socket
    print(f"join to connected audio: {joined:.2f} s")


def test_a_moderators_mute_of_the_console_holds_through_renegotiation(
    browser: Browser, daemon: Daemon
) -> None:
    with phone_in_meeting(daemon) as sock:
        moderator = Moderator(daemon)
        page, errors = open_console(browser, daemon)
        web = join_audio(page, moderator)
        hears(sock, PAGE_TONE, 1.0, 10)
        row = page.locator(f'tr[data-attendee="{web["attendeeId"]}"]')

        moderator.call(
            "POST",
            f"{moderator.meeting}/attendees/web/{web['attendeeId']}/mediastate",
            {"audio": False},
        )
        muted_at = time.monotonic()
        hears(sock, None, 0.2, 3)
        after = sock.received(muted_at)
        loud = [p.at for p in after if p.level > QUIET]
        silent_from = next(p.at for p in after if not loud or p.at > loud[-1])
        print(f"REST mute answered to silence at the phone: {silent_from - muted_at:.3f} s")
        playwright_sync.expect(row.locator("td.audio")).to_have_text("muted")
        playwright_sync.expect(row.locator(".dot")).to_have_class("dot")

        # The page renegotiates (an ICE restart: a new offer through the server, which
        # Janus answers on the handle the server holds).
        ufrag = page.evaluate(
            "() => window.__peers[0].localDescription.sdp.match(/ice-ufrag:(.*)/)[1]"
        )
        page.evaluate("() => window.__peers[0].restartIce()")
        page.wait_for_function(
            """(old) => {
              const pc = window.__peers[0];
              return pc.signalingState === "stable" && pc.remoteDescription &&
                !pc.localDescription.sdp.includes("ice-ufrag:" + old);
            }""",
            arg=ufrag,
            timeout=10000,
        )
        daemon.wait_log("browser renegotiated")
        stays_silent(sock, 1.5)
        entry = moderator.entry(web["attendeeId"])
        assert entry is not None and entry["mediaState"]["audio"] is False

        # The moderator's unmute is what brings the page back.
        moderator.call(
            "POST",
            f"{moderator.meeting}/attendees/web/{web['attendeeId']}/mediastate",
            {"audio": True},
        )
        hears(sock, PAGE_TONE, 0.5, 5)
        assert errors == []

        # A closed page leaves: its socket goes, and the server ends its audio.
        page.close()
        moderator.wait_for(
            lambda d: not any(a["attendeeType"] == "web" for a in d["attendees"]),
            5,
            "the closed page's attendee gone",
        )
        hears(sock, None, 0.5, 5)


def test_a_restarted_mixer_ends_the_consoles_audio_and_it_joins_again(
    browser: Browser, daemon: Daemon
) -> None:
    with phone_in_meeting(daemon) as sock:
        moderator = Moderator(daemon)
        page, errors = open_console(browser, daemon)
        join_audio(page, moderator)
        hears(sock, PAGE_TONE, 1.0, 10)

        pids = [int(m[1]) for m in re.finditer(r"janus started.*\bpid=(\d+)", daemon.log())]
        assert len(pids) == 1, daemon.log()
        os.kill(pids[0], signal.SIGKILL)  # the daemon's own child, started for this test
        killed = time.monotonic()
        # Its PeerConnection was with the dead Janus: the server ends the page's audio at once
        # (not when the browser's ICE consent runs out, 30 s later) and says why.
        playwright_sync.expect(page.locator("#audio-status")).to_contain_text(
            "Audio ended: mixer resync", timeout=10000
        )
        ended = time.monotonic() - killed
        moderator.wait_for(
            lambda d: not any(a["attendeeType"] == "web" for a in d["attendees"]),
            5,
            "the page's attendee gone",
        )
        join_audio(page, moderator)
        hears(sock, PAGE_TONE, 0.5, 10)
        assert errors == []
        page.close()
    print(f"SIGKILL to the page told: {ended:.2f} s")
