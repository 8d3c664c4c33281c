"""Real sipp calls against the real daemon, over UDP and TCP, including loss and shutdown."""

from __future__ import annotations

import pathlib
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from tests.interop.harness import (
    LOOPBACK,
    Daemon,
    explain,
    free_port,
    options_ping,
    running_daemon,
    sipp,
)

pytestmark = pytest.mark.interop

TRANSPORTS = [pytest.param("u1", id="udp"), pytest.param("t1", id="tcp")]
WAITING_ROOM = "\n[calls]\nlobby_timeout_seconds = 30\n"


@pytest.fixture
def daemon(tmp_path: pathlib.Path) -> object:
    with running_daemon(tmp_path, extra_config=WAITING_ROOM) as d:
        yield d


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("header", "generation"),
    [("X-Phone: legacy", "legacy"), ("spacesVersion: 1.1", "modern")],
    ids=["legacy", "modern"],
)
def test_basic_call(
    daemon: Daemon, tmp_path: pathlib.Path, transport: str, header: str, generation: str
) -> None:
    result = sipp(daemon, "call.xml", workdir=tmp_path, transport=transport, version_header=header)
    assert result.returncode == 0, explain(result, daemon, tmp_path)
    daemon.wait_log(r"call offered", rf"version={generation}\b")
    daemon.wait_log(r"call ended")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dtmf_info(daemon: Daemon, tmp_path: pathlib.Path, transport: str) -> None:
    result = sipp(daemon, "info_dtmf.xml", workdir=tmp_path, transport=transport)
    assert result.returncode == 0, explain(result, daemon, tmp_path)
    daemon.wait_log(r"dtmf", r"digit=9")
    digits = re.findall(r"dtmf.*digit=.?([0-9*#])", daemon.log())
    assert digits == ["*", "6", "9"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reinvite_hold_and_resume(daemon: Daemon, tmp_path: pathlib.Path, transport: str) -> None:
    """sendonly → answer recvonly; sendrecv → answer sendrecv (regex checks in the scenario)."""
    result = sipp(daemon, "reinvite_hold.xml", workdir=tmp_path, transport=transport)
    assert result.returncode == 0, explain(result, daemon, tmp_path)
    daemon.wait_log(r"\bhold\b")
    daemon.wait_log(r"\bresume\b")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cancel_before_answer(daemon: Daemon, tmp_path: pathlib.Path, transport: str) -> None:
    result = sipp(daemon, "cancel.xml", workdir=tmp_path, transport=transport, service="lobby")
    assert result.returncode == 0, explain(result, daemon, tmp_path)
    daemon.wait_log(r"call ended", r"reason=cancelled")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_shutdown_refuses_new_calls_then_byes_established_ones(
    tmp_path: pathlib.Path, transport: str
) -> None:
    """SIGTERM: new INVITEs and OPTIONS get 503 during the grace period, then the established call gets BYE,
    which the phone answers, and the daemon exits 0 (checked by running_daemon)."""
    with running_daemon(tmp_path, grace=2.0) as daemon:
        results: list[subprocess.CompletedProcess[str]] = []
        phone = threading.Thread(
            target=lambda: results.append(
                sipp(daemon, "bye_from_bridge.xml", workdir=tmp_path, transport=transport)
            )
        )
        phone.start()
        deadline = time.monotonic() + 15
        while "call confirmed" not in daemon.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "call confirmed" in daemon.log(), daemon.log()
        daemon.signal(signal.SIGTERM)
        time.sleep(0.3)
        answer = invite_once(daemon)
        assert answer is not None and answer.startswith(b"SIP/2.0 503"), answer
        # A proxy's OPTIONS probe learns it too, and takes the node out of its set.
        ping = options_ping(daemon.host, daemon.port)
        assert ping is not None and ping.startswith(b"SIP/2.0 503 Shutting Down\r\n"), ping
        assert b"\r\nRetry-After: 30\r\n" in ping, ping
        phone.join(60)
        (result,) = results
        assert result.returncode == 0, explain(result, daemon, tmp_path)


def invite_once(daemon: Daemon) -> bytes | None:
    """One raw INVITE over UDP; the first final response, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
        sock.sendto(
            (
                f"INVITE sip:demo@{LOOPBACK}:{daemon.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bKdrain1;rport\r\n"
                f"From: <sip:late@{LOOPBACK}>;tag=late\r\nTo: <sip:demo@{LOOPBACK}>\r\n"
                "Call-ID: drain-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                f"Contact: <sip:late@{LOOPBACK}:{port}>\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            (LOOPBACK, daemon.port),
        )
        sock.settimeout(2)
        try:
            while True:
                data = sock.recv(65535)
                if not data.startswith(b"SIP/2.0 1"):
                    return data
        except TimeoutError:
            return None


def test_load_200_calls_at_50_per_second(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    result = sipp(daemon, "call.xml", workdir=tmp_path, calls=200, rate=50, timeout=60)
    assert result.returncode == 0, explain(result, daemon, tmp_path)
    stats = (tmp_path / "call.xml.stat.csv").read_text().splitlines()
    header, last = stats[0].split(";"), stats[-1].split(";")
    row = dict(zip(header, last, strict=False))
    assert row["SuccessfulCall(C)"] == "200" and row["FailedCall(C)"] == "0", row
    assert options_ping(daemon.host, daemon.port) is not None


class LossyRelay(threading.Thread):
    """A UDP relay between one client and the daemon that drops the first datagram starting with
    each of ``drop`` (in either direction)."""

    def __init__(self, target: tuple[str, int], drop: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.pending = list(drop)
        self.dropped: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.client: tuple[str, int] | None = None
        self.running = True

    def run(self) -> None:
        while self.running:
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready:
                continue
            data, source = self.sock.recvfrom(65535)
            for prefix in self.pending:
                if data.startswith(prefix):
                    self.pending.remove(prefix)
                    self.dropped.append(data.split(b"\r\n", 1)[0])
                    break
            else:
                if source == self.target:
                    if self.client is not None:
                        self.sock.sendto(data, self.client)
                else:
                    self.client = source
                    self.sock.sendto(data, self.target)

    def close(self) -> None:
        self.running = False
        self.join(2)
        self.sock.close()


def test_calls_complete_over_a_lossy_path(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    relay = LossyRelay(
        (daemon.host, daemon.port),
        [b"INVITE", b"SIP/2.0 200", b"ACK", b"BYE", b"SIP/2.0 200"],
    )
    relay.start()
    try:
        result = sipp(daemon, "call.xml", workdir=tmp_path, target_port=relay.port, timeout=40)
    finally:
        relay.close()
    assert result.returncode == 0, explain(result, daemon, tmp_path)
    assert len(relay.dropped) == 5, relay.dropped


def test_daemon_answers_on_ipv6(tmp_path: pathlib.Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        free_port("::1")
    except OSError:
        pytest.skip("::1 is not configured")
    with running_daemon(tmp_path, host="::1") as daemon:
        result = sipp(daemon, "call.xml", workdir=tmp_path)
        assert result.returncode == 0, explain(result, daemon, tmp_path)
