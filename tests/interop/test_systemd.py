"""The systemd notify protocol from the real daemon, read from a NOTIFY_SOCKET the test owns."""

from __future__ import annotations

import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.interop.harness import ROOT, Daemon, free_port, options_ping

pytestmark = pytest.mark.interop


def receive(sock: socket.socket, wanted: str, deadline: float) -> list[str]:
    """Datagrams until one contains ``wanted`` (each as text), or fail at ``deadline``."""
    seen: list[str] = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            break
        seen.append(message)
        if wanted in message.split("\n"):
            return seen
    raise AssertionError(f"no {wanted} in {seen}")


def test_ready_watchdog_and_stopping(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        daemon = Daemon(
            tmp_path,
            port=free_port(),
            env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"},
        )
        daemon.start()
        try:
            seen = receive(sock, "READY=1", time.monotonic() + 10)
            ready = seen[-1].split("\n")
            assert any(line.startswith("STATUS=listening on udp:") for line in ready), ready
            assert f"MAINPID={daemon.process.pid}" in ready  # type: ignore[union-attr]
            # READY comes only once the listeners answer.
            assert options_ping(daemon.host, daemon.port) is not None
            # Watchdog pings every half interval (0.1 s): several within a second.
            start = time.monotonic()
            pings = 0
            while pings < 3:
                receive(sock, "WATCHDOG=1", start + 1.0)
                pings += 1
            daemon.signal(signal.SIGTERM)
            receive(sock, "STOPPING=1", time.monotonic() + 10)
        finally:
            assert daemon.stop() == 0, daemon.log()


def test_unit_file_verifies() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = ROOT / "systemd" / "spaces-sip-bridge.service"
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    # The unit names its ExecStart path under /opt, absent on a build machine; everything else
    # (directives, values) must verify cleanly.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/spaces-bridge" not in line and "is not executable" not in line
    ]
    assert not problems, problems
