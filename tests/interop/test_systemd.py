"""The systemd notify protocol from the real daemon, read from a NOTIFY_SOCKET the test owns."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
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


def test_the_server_alone_notifies_ready_watchdog_and_stopping(tmp_path: pathlib.Path) -> None:
    """``spaces-bridge server`` under its own unit (systemd/spaces-conference-server.service)."""
    port = free_port()
    config = tmp_path / "server.toml"
    config.write_text(
        f'[server]\nport = {port}\nspaces = [{{ id = "demo" }}]\n'
        f'tokens = [{{ name = "console", role = "moderator", token = "{"t" * 24}" }}]\n'
    )
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"}
        log = (tmp_path / "server.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "server", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            ready = receive(sock, "READY=1", time.monotonic() + 15)[-1].split("\n")
            assert f"STATUS=serving http://127.0.0.1:{port}" in ready, ready
            assert f"MAINPID={process.pid}" in ready
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass  # READY comes once the API answers
            for _ in range(3):
                receive(sock, "WATCHDOG=1", time.monotonic() + 1.0)
            # A HUP meant for the bridges beside it does not end the meetings.
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while "SIGHUP ignored" not in (tmp_path / "server.log").read_text():
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.05)
            receive(sock, "WATCHDOG=1", time.monotonic() + 1.0)  # still serving
            assert process.poll() is None
            process.send_signal(signal.SIGTERM)
            receive(sock, "STOPPING=1", time.monotonic() + 10)
            assert process.wait(15) == 0, (tmp_path / "server.log").read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()


@pytest.mark.parametrize("name", ["spaces-sip-bridge", "spaces-conference-server"])
def test_unit_file_verifies(name: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = ROOT / "systemd" / f"{name}.service"
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
