"""Every RFC 4475 torture message sent to the running daemon over UDP and over TCP: it answers what
it can, drops what it must, and still answers an OPTIONS afterwards (docs/behaviour.md, Limits and
bad input). Replies go back to the loopback sender only: the messages' Via hosts (192.0.2.x) are
never used as destinations, and ``maddr`` is ignored."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import time

import pytest

from tests.conftest import CORPUS
from tests.interop.harness import LOOPBACK, options_ping, running_daemon

pytestmark = pytest.mark.interop

MESSAGES = sorted(CORPUS.glob("*.dat"))


def alive(port: int) -> None:
    deadline = time.monotonic() + 5
    while options_ping(LOOPBACK, port, 0.2) is None:
        assert time.monotonic() < deadline, "the daemon stopped answering OPTIONS"


def test_every_torture_message_over_udp_and_tcp(tmp_path: pathlib.Path) -> None:
    assert len(MESSAGES) >= 40
    with running_daemon(tmp_path) as daemon:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            for path in MESSAGES:
                udp.sendto(path.read_bytes(), (LOOPBACK, daemon.port))
        alive(daemon.port)
        for path in MESSAGES:
            with socket.create_connection((LOOPBACK, daemon.port), timeout=2) as tcp:
                tcp.sendall(path.read_bytes())
                tcp.settimeout(0.2)
                # An answer, or the bridge closing a bad frame: both are fine.
                with contextlib.suppress(TimeoutError, ConnectionResetError):
                    tcp.recv(65535)
        alive(daemon.port)
        assert "Traceback" not in daemon.log(), daemon.log()[-3000:]
