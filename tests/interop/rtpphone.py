"""A phone of the test's own, on plain sockets: SIP over UDP for the signalling, RTP over UDP for
the audio, so that a test decides exactly what is sent from where and when.

:class:`SipPhone` is a minimal user agent: it calls (INVITE with an audio offer, ACK), re-offers
(re-INVITE to a new RTP port) and hangs up (BYE), and answers what the bridge sends it in the
dialog (a re-INVITE gets the RFC 3264 answer at the phone's current RTP port, INFO and BYE get
200), recording the direction of each offer it received. It does not stop the audio when told to:
what the phone sends is up to the test's :class:`Talker`.

:class:`RtpSocket` is one UDP socket that records every datagram it receives (with its source and
time of arrival) and sends what the test gives it. :class:`Talker` sends a tone from one of them at
a chosen packet time, and can move to another socket (a re-INVITE) or pause.

Nothing here imports the bridge but the G.711 tables and the level measure.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bridge.media.analysis import rms_dbfs
from bridge.media.g711 import ULAW
from tests.interop.harness import LOOPBACK

Address = tuple[str, int]

TONE_HZ = 440.0
"""Not a divisor of 8 kHz / 160: no two 20 ms frames of the tone are alike, so a frame lost,
repeated or moved shows in the bytes."""
TONE_DB = -10.0
"""The tone's peak below full scale: its RMS is about -13 dBFS."""
SILENT = -60.0
"""Below this RMS (dBFS) a payload is silence: G.711 silence decodes to about -127."""


# --- RTP ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """One datagram a :class:`RtpSocket` received."""

    at: float
    """``time.monotonic()`` when the receiving thread read it."""
    source: Address
    data: bytes

    @property
    def is_rtp(self) -> bool:
        return len(self.data) >= 12 and self.data[0] >> 6 == 2

    @property
    def is_rtcp(self) -> bool:
        """RTCP (RFC 5761 §4: packet types 200-204 where RTP has its payload type)."""
        return len(self.data) >= 8 and self.data[0] >> 6 == 2 and 200 <= self.data[1] <= 204

    @property
    def payload_type(self) -> int:
        return self.data[1] & 0x7F

    @property
    def sequence(self) -> int:
        return int(struct.unpack_from("!H", self.data, 2)[0])

    @property
    def timestamp(self) -> int:
        return int(struct.unpack_from("!I", self.data, 4)[0])

    @property
    def ssrc(self) -> int:
        return int(struct.unpack_from("!I", self.data, 8)[0])

    @property
    def payload(self) -> bytes:
        """The payload of a plain packet (no CSRC, extension or padding: what the bridge sends)."""
        assert self.data[0] == 0x80, f"not a plain RTP packet: {self.data[:12].hex()}"
        return self.data[12:]

    @property
    def level(self) -> float:
        """The payload's RMS in dBFS, decoded as µ-law."""
        return rms_dbfs(ULAW.samples(self.payload))

    @property
    def loud(self) -> bool:
        return self.level > SILENT


def rtp(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes) -> bytes:
    """A plain RTP packet, packed here (not by the bridge's own code)."""
    header = struct.pack(
        "!BBHII", 0x80, payload_type, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )
    return header + payload


EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
"""RFC 4733 §3.2 event codes of the keypad's keys."""


def press(
    media: RtpSocket,
    to: Address,
    keys: str,
    *,
    payload_type: int = 101,
    gap: float = 0.2,
    ssrc: int = 0x4B455953,
) -> None:
    """Press ``keys`` as RFC 4733 events (RFC 4733 §2.5: a start packet with the marker bit, an
    update, then the end packet three times), ``gap`` seconds apart, from ``media`` to ``to``."""
    sequence, timestamp = media.key_sequence, media.key_timestamp
    for key in keys:
        code = EVENT_CODES[key]
        updates = [(False, 400), (False, 800)] + [(True, 1280)] * 3
        for i, (end, duration) in enumerate(updates):
            marker = 0x80 if i == 0 else 0
            header = struct.pack(
                "!BBHII", 0x80, marker | payload_type, sequence & 0xFFFF, timestamp, ssrc
            )
            body = struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)
            media.send(header + body, to)
            sequence += 1
            time.sleep(0.01)
        timestamp = (timestamp + int(8000 * gap)) & 0xFFFFFFFF
        time.sleep(gap)
    media.key_sequence, media.key_timestamp = sequence, timestamp


def tone(samples: int, offset: int = 0, frequency: float = TONE_HZ) -> bytes:
    """``samples`` µ-law samples of the test tone (``frequency`` Hz), starting at sample
    ``offset`` of it."""
    amplitude = 32767 * 10 ** (TONE_DB / 20)
    step = 2 * math.pi * frequency / 8000
    return ULAW.from_samples(
        round(amplitude * math.sin(step * i)) for i in range(offset, offset + samples)
    )


class RtpSocket:
    """A UDP socket that records what it receives. Use as a context manager."""

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(0.05)
        self.address: Address = self.sock.getsockname()[:2]
        self.packets: list[Packet] = []
        self.key_sequence = random.getrandbits(15)
        self.key_timestamp = random.getrandbits(31)
        """Where :func:`press` goes on: one stream of key events per socket."""
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.address[1]

    def __enter__(self) -> RtpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2)
        self.sock.close()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                if self._closed.is_set():
                    return
                continue  # ICMP unreachable reported on a later read
            with self._lock:
                self.packets.append(Packet(time.monotonic(), source[:2], data))

    def send(self, data: bytes, to: Address) -> None:
        self.sock.sendto(data, to)

    def received(
        self, since: float = 0.0, until: float = math.inf, *, rtcp: bool = False
    ) -> list[Packet]:
        """What arrived in ``[since, until)`` (``time.monotonic()``), RTCP left out unless
        ``rtcp``: the bridge sends its reports to the phone's RTP port + 1, which may be another
        socket of the test."""
        with self._lock:
            return [p for p in self.packets if since <= p.at < until and (rtcp or not p.is_rtcp)]

    def wait(
        self, predicate: Callable[[list[Packet]], bool], timeout: float, what: str
    ) -> list[Packet]:
        """Wait until ``predicate`` holds for everything received so far; return that."""
        deadline = time.monotonic() + timeout
        while True:
            packets = self.received()
            if predicate(packets):
                return packets
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what}: not within {timeout}s at {self.address}; received {len(packets)} "
                    f"datagrams: {[p.data[:16].hex() for p in packets[-5:]]}"
                )
            time.sleep(0.01)


@dataclass
class Talker:
    """Sends the test tone as 8 kHz PCMU, one packet every ``ptime`` ms, from ``source`` to
    ``target``, in a thread, paced by the clock (no drift). ``move`` changes the socket and
    target and starts a new stream (new SSRC, sequence and timestamp), as a phone does after a
    re-INVITE."""

    source: RtpSocket
    target: Address
    ptime: int = 20
    payload_type: int = 0
    frequency: float = TONE_HZ
    """The tone's frequency (Hz)."""
    sent: int = 0
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    _sequence: int = field(default_factory=lambda: random.getrandbits(16))
    _timestamp: int = field(default_factory=lambda: random.getrandbits(32))
    _samples: int = 0
    paused: bool = False
    """While true, the talker sends nothing (and its stream does not advance)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Talker:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def __enter__(self) -> Talker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def move(self, source: RtpSocket, target: Address) -> None:
        with self._lock:
            self.source, self.target = source, target
            self.ssrc = random.getrandbits(32)
            self._sequence = random.getrandbits(16)
            self._timestamp = random.getrandbits(32)

    def _run(self) -> None:
        interval = self.ptime / 1000
        samples = 8 * self.ptime
        due = time.monotonic()
        for _ in itertools.count():
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            due += interval
            if self.paused:
                continue
            with self._lock:
                packet = rtp(
                    self.payload_type,
                    self._sequence,
                    self._timestamp,
                    self.ssrc,
                    tone(samples, self._samples, self.frequency),
                )
                self._sequence += 1
                self._timestamp += samples
                self._samples += samples
                source, target = self.source, self.target
            with contextlib.suppress(OSError):
                source.send(packet, target)
            self.sent += 1


# --- SIP ------------------------------------------------------------------------------------------


@dataclass
class Message:
    """A SIP message received: its first line, headers (names lower-cased, in order) and body."""

    first: str
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]

    @property
    def status(self) -> int:
        return int(self.first.split()[1]) if self.first.startswith("SIP/2.0 ") else 0

    @property
    def method(self) -> str:
        return self.first.split()[0]

    @property
    def cseq(self) -> tuple[int, str]:
        number, method = (self.header("cseq") or "0 X").split()
        return int(number), method

    @property
    def direction(self) -> str:
        found = re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", self.body, re.M)
        return found[-1] if found else "sendrecv"

    @property
    def media(self) -> Address:
        """The audio address of an SDP body: the ``c=`` host and the audio ``m=`` port."""
        host = re.findall(r"^c=IN IP[46] (\S+)\s*$", self.body, re.M)
        port = re.search(r"^m=audio (\d+) ", self.body, re.M)
        assert host and port, f"no audio address in the SDP:\n{self.body}"
        return host[-1], int(port[1])


_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
}


def parse(data: bytes) -> Message:
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    first, *lines = head.split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        headers.append((_COMPACT.get(name, name), value.strip()))
    return Message(first, headers, body)


def sdp(host: str, port: int, direction: str = "sendrecv", version: int = 1) -> str:
    family = "IP6" if ":" in host else "IP4"
    return (
        f"v=0\r\no=phone 1 {version} IN {family} {host}\r\ns=-\r\nc=IN {family} {host}\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na={direction}\r\n"
    )


_ANSWER = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class SipPhone:
    """One call from a UDP socket of its own to the daemon at ``target``. Use as a context
    manager; requests from the bridge are answered by a thread."""

    def __init__(
        self,
        target: Address,
        *,
        host: str = LOOPBACK,
        name: str = "RTP Phone",
        service: str = "demo",
        media_host: str | None = None,
        contact_port: int | None = None,
    ) -> None:
        """``contact_port``: the port written in Contact when it is not the socket's (a phone
        behind a NAT names its own port, not the binding its packets come from)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.contact_port = contact_port or self.port
        self.target = target
        self.name = name
        self.service = service
        self.media_host = media_host or host
        self.media_port = 0
        self.call_id = f"rtpphone-{random.getrandbits(64):x}"
        self.tag = f"{random.getrandbits(32):x}"
        self.remote_tag: str | None = None
        self.remote_target: str | None = None
        self.routes: list[str] = []
        """The dialog's route set (the 2xx's Record-Route, reversed): a proxy in the path."""
        self.sources: list[Address] = []
        """Where each request from the bridge's side came from, in order."""
        self.cseq = 1
        self.sdp_version = 1
        self.answer: Message | None = None
        """The bridge's last SDP answer (or offer, for a re-INVITE it sent)."""
        self.early: Message | None = None
        """The last provisional response with SDP (183: early media, e.g. from a lobby)."""
        self.offers: list[str] = []
        """The direction of each re-INVITE offer received from the bridge, in order."""
        self.byes = 0
        """BYEs received from the bridge."""
        self.ended = False
        """The call is over (a BYE either way)."""
        self._responses: list[Message] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._seen_invites: set[str] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def __enter__(self) -> SipPhone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2)
        self.sock.close()

    # -- our requests ---------------------------------------------------------------------------
    @property
    def _host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def _to_uri(self) -> str:
        host, port = self.target
        h = f"[{host}]" if ":" in host else host
        return f"sip:{self.service}@{h}:{port}"

    def _request(
        self,
        method: str,
        cseq: int,
        body: str = "",
        *,
        branch: str | None = None,
        content_type: str = "application/sdp",
    ) -> str:
        uri = self.remote_target if self.remote_target and method != "INVITE" else self._to_uri
        if method == "INVITE" and self.remote_target:
            uri = self.remote_target
        to = f"<{self._to_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self._host}:{self.port};branch={branch or _branch()};rport",
            f'From: "{self.name}" <sip:phone@{self._host}>;tag={self.tag}',
            f"To: {to}",
            *(f"Route: {route}" for route in (self.routes if self.remote_tag else ())),
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method if method != 'ACK' else 'ACK'}",
            f"Contact: <sip:phone@{self._host}:{self.contact_port}>",
            "Max-Forwards: 70",
        ]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def _transact(
        self,
        method: str,
        body: str = "",
        timeout: float = 10.0,
        content_type: str = "application/sdp",
    ) -> Message:
        """Send a request (retransmitted every 500 ms until a response) and return its final
        response; a 2xx to an INVITE is acknowledged."""
        cseq = self.cseq
        branch = _branch()
        text = self._request(method, cseq, body, branch=branch, content_type=content_type).encode()
        deadline = time.monotonic() + timeout
        resend = 0.0
        provisional = False
        while True:
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"no final response to {method} within {timeout}s")
            if not provisional and now >= resend:
                self.sock.sendto(text, self.target)
                resend = now + 0.5
            with self._lock:
                found = [r for r in self._responses if r.cseq == (cseq, method)]
                for response in found:
                    self._responses.remove(response)
            for response in found:
                if response.status < 200:
                    provisional = True
                    if response.body.strip():
                        self.early = response
                    continue
                if method == "INVITE":
                    self._ack(response, cseq, branch)
                return response
            time.sleep(0.005)

    def _ack(self, response: Message, cseq: int, branch: str) -> None:
        if 200 <= response.status < 300:
            tag = re.search(r";\s*tag=([^;>\s]+)", response.header("to") or "")
            self.remote_tag = tag[1] if tag else None
            contact = re.search(r"<([^>]+)>", response.header("contact") or "")
            if contact:
                self.remote_target = contact[1]
            record_routes = [
                route.strip()
                for value in response.all("record-route")
                for route in re.findall(r"<[^>]*>[^,]*", value)
            ]
            self.routes = list(reversed(record_routes))
            self.sock.sendto(self._request("ACK", cseq).encode(), self.target)
        else:  # the ACK of a non-2xx is part of the INVITE transaction: same branch, To tag
            to = response.header("to") or ""
            lines = [
                f"ACK {self._to_uri} SIP/2.0",
                f"Via: SIP/2.0/UDP {self._host}:{self.port};branch={branch};rport",
                f'From: "{self.name}" <sip:phone@{self._host}>;tag={self.tag}',
                f"To: {to}",
                f"Call-ID: {self.call_id}",
                f"CSeq: {cseq} ACK",
                "Max-Forwards: 70",
                "Content-Length: 0",
            ]
            self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), self.target)

    def invite(self, media_port: int, *, timeout: float = 10.0) -> Message:
        """Call with an audio offer at ``media_port``; the final response (2xx: acknowledged, and
        its SDP is :attr:`answer`)."""
        self.media_port = media_port
        response = self._transact("INVITE", sdp(self.media_host, media_port), timeout)
        if response.status == 200:
            self.answer = response
        return response

    def reinvite(self, media_port: int, direction: str = "sendrecv") -> Message:
        """Re-offer audio at ``media_port``; the bridge's answer."""
        self.cseq += 1
        self.sdp_version += 1
        self.media_port = media_port
        body = sdp(self.media_host, media_port, direction, self.sdp_version)
        response = self._transact("INVITE", body)
        assert response.status == 200, response
        self.answer = response
        return response

    def key(self, keys: str, gap: float = 0.2) -> None:
        """Press ``keys`` as SIP INFO (``application/dtmf-relay``), one INFO per key."""
        for key in keys:
            self.cseq += 1
            body = f"Signal={key}\r\nDuration=160\r\n"
            response = self._transact("INFO", body, content_type="application/dtmf-relay")
            assert response.status == 200, response
            time.sleep(gap)

    def bye(self) -> Message:
        self.cseq += 1
        response = self._transact("BYE")
        assert response.status == 200, response
        self.ended = True
        return response

    @property
    def bridge_media(self) -> Address:
        """Where the bridge takes the phone's RTP, from its SDP answer."""
        assert self.answer is not None, "no SDP answer yet"
        return self.answer.media

    def wait_offers(self, count: int, timeout: float = 5.0) -> list[str]:
        """Wait until the bridge has sent ``count`` re-INVITEs; their directions."""
        deadline = time.monotonic() + timeout
        while len(self.offers) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.offers)} re-INVITEs, not {count}: {self.offers}")
            time.sleep(0.01)
        return list(self.offers)

    # -- the bridge's requests ------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            if not data.strip():
                continue  # keep-alive
            message = parse(data)
            if message.first.startswith("SIP/2.0 "):
                with self._lock:
                    self._responses.append(message)
            elif message.method != "ACK":
                self.sources.append(source[:2])
                self._respond(message, source[:2])

    def _respond(self, request: Message, source: Address) -> None:
        body = ""
        if request.method == "INVITE":
            branch = (request.header("via") or "").split("branch=")[-1]
            if branch not in self._seen_invites:  # not a retransmission
                self._seen_invites.add(branch)
                self.offers.append(request.direction)
                self.sdp_version += 1
            body = sdp(
                self.media_host,
                self.media_port,
                _ANSWER.get(request.direction, "sendrecv"),
                self.sdp_version,
            )
        elif request.method == "BYE":
            self.byes += 1
            self.ended = True
        lines = ["SIP/2.0 200 OK"]
        lines += [f"Via: {v}" for v in request.all("via")]
        lines += [f"Record-Route: {v}" for v in request.all("record-route")]
        to = request.header("to") or ""
        if ";tag=" not in to:
            to += f";tag={self.tag}"
        lines += [
            f"From: {request.header('from')}",
            f"To: {to}",
            f"Call-ID: {request.header('call-id')}",
            f"CSeq: {request.header('cseq')}",
            f"Contact: <sip:phone@{self._host}:{self.contact_port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), source)


def _branch() -> str:
    return f"z9hG4bK{random.getrandbits(64):x}"


@contextlib.contextmanager
def calling(target: Address, media_port: int, **kwargs: Any) -> Iterator[SipPhone]:
    """A :class:`SipPhone` in an answered call (200) with its audio at ``media_port``; hung up at
    the end unless the bridge did."""
    with SipPhone(target, **kwargs) as phone:
        answer = phone.invite(media_port)
        assert answer.status == 200, f"the call was answered {answer.first}"
        yield phone
        if not phone.ended:
            phone.bye()
