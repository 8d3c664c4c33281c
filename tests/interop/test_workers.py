"""``[sip] workers = 2``: a supervisor and two worker processes sharing the SIP ports (SO_REUSEPORT)
against a real ``spaces-bridge server``.

Which worker gets a phone is the kernel's choice, a hash of the datagram's addresses. The tests do
not leave it to chance: an OPTIONS from a source port, and which worker's counter moved, tell where
every later datagram from that port goes; phones are then placed on each worker by their port.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import re
import signal
import socket
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest

from tests.interop.harness import LOOPBACK, Daemon, explain, free_port, probe, sipp
from tests.interop.meeting import Moderator, phone_call
from tests.interop.remote import TOKEN_ENV, conference_server, remote_config
from tests.interop.scenario import Phone
from tests.interop.test_ops import get, sample
from tests.interop.test_systemd import receive

pytestmark = pytest.mark.interop

WORKERS = 2


def ops_ports(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports: worker i serves on the first + i."""
    for _ in range(50):
        first = free_port(both=False)
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((LOOPBACK, port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return first
    raise RuntimeError("no free ports")


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def worker_pids(daemon: Daemon) -> list[int]:
    """Each worker's pid, by index, from the supervisor's ``worker started`` lines."""
    pids: dict[int, int] = {}
    for line in daemon.log().splitlines():
        if "worker started" in line:
            pid, index = re.search(r"pid=(\d+)", line), re.search(r"worker=(\d+)", line)
            assert pid is not None and index is not None, line
            pids[int(index[1])] = int(pid[1])
    assert sorted(pids) == list(range(WORKERS)), daemon.log()
    return [pids[i] for i in range(WORKERS)]


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        time.sleep(0.05)


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


@contextmanager
def workers_daemon(
    workdir: pathlib.Path, *, env: dict[str, str] | None = None
) -> Iterator[tuple[Daemon, list[str]]]:
    """A conference server, and the bridge with two workers against it; yields the daemon and
    each worker's operations URL once both are ready. The test checks the exit code."""
    server_port = free_port()
    (workdir / "bridge").mkdir()
    ops = ops_ports(WORKERS)
    urls = [f"http://{LOOPBACK}:{ops + i}" for i in range(WORKERS)]
    daemon = Daemon(
        workdir / "bridge",
        port=free_port(),
        sip_config=f"workers = {WORKERS}\n",
        extra_config=remote_config(f"http://{LOOPBACK}:{server_port}")
        + f'\n[ops]\nlisten = "{LOOPBACK}:{ops}"\n',
        env={**TOKEN_ENV, **(env or {})},
    )
    with conference_server(workdir, server_port):
        daemon.start()
        try:
            wait_until(lambda: all(ready(url) for url in urls), 15, "both workers ready")
            yield daemon, urls
        finally:
            pids = worker_pids(daemon)
            if daemon.process is not None and daemon.process.poll() is None:
                daemon.stop()
            for pid in pids:
                if alive(pid):  # only after a failed assertion: never leave a worker behind
                    os.kill(pid, signal.SIGKILL)


def options_in(url: str) -> float:
    _, text = get(url + "/metrics")
    return sample(text, "spaces_bridge_sip_requests_total", direction="in", method="OPTIONS")


def ports_by_worker(daemon: Daemon, urls: list[str], per_worker: int) -> list[list[int]]:
    """Source ports whose datagrams the kernel gives to each worker, ``per_worker`` of each."""
    found: list[list[int]] = [[] for _ in urls]
    for _ in range(64):
        if all(len(ports) >= per_worker for ports in found):
            return found
        port = free_port(both=False)
        before = [options_in(url) for url in urls]
        answer = probe(daemon.host, daemon.port, "OPTIONS", "", 2.0, local_port=port)
        assert answer is not None and answer.startswith(b"SIP/2.0 200 "), answer
        moved = [i for i, url in enumerate(urls) if options_in(url) > before[i]]
        assert len(moved) == 1, moved  # one worker, and only one, saw it
        if len(found[moved[0]]) < per_worker:
            found[moved[0]].append(port)
    raise AssertionError(f"64 source ports did not reach every worker: {found}")


def test_phones_from_many_source_ports_are_answered_and_spread_over_both_workers(
    tmp_path: pathlib.Path,
) -> None:
    with workers_daemon(tmp_path) as (daemon, urls):
        chosen = ports_by_worker(daemon, urls, 2)
        # Two more ports left to the kernel, unprobed: whichever worker they reach answers.
        ports = [*chosen[0], *chosen[1], free_port(both=False), free_port(both=False)]

        def call(port: int) -> None:
            workdir = tmp_path / f"sipp-{port}"
            workdir.mkdir()
            result = sipp(daemon, "call.xml", workdir=workdir, calls=3, rate=10, local_port=port)
            assert result.returncode == 0, explain(result, daemon, workdir)

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            for future in [pool.submit(call, port) for port in ports]:
                future.result(120)

        completed = []
        for url in urls:
            _, text = get(url + "/metrics")
            completed.append(sample(text, "spaces_bridge_calls_total", outcome="completed"))
        assert completed[0] >= 6 and completed[1] >= 6, completed  # the probed ports' calls
        assert sum(completed) == 3 * len(ports), completed
        for i in range(WORKERS):
            daemon.wait_log("call ended", f"worker={i}")

        # Each worker relays media on its own slice of [media] port_min..port_max.
        media = tomllib.loads((daemon.workdir / "bridge.toml").read_text())["media"]
        half = (media["port_max"] - media["port_min"] + 1) // WORKERS
        for i in range(WORKERS):
            line = next(
                line
                for line in daemon.log().splitlines()
                if "media relay ready" in line and f"worker={i}" in line
            )
            match = re.search(r"ports=(\d+)-(\d+)", line)
            assert match is not None, line
            first = media["port_min"] + i * half
            assert (int(match[1]), int(match[2])) == (first, first + half - 1), (line, media)

        # SIGHUP to the supervisor reaches every worker.
        daemon.signal(signal.SIGHUP)
        for i in range(WORKERS):
            daemon.wait_log("configuration reloaded", f"worker={i}")
        assert daemon.stop() == 0, daemon.log()


@contextmanager
def a_phone_on_each_worker(
    daemon: Daemon,
    tmp_path: pathlib.Path,
    chosen: list[list[int]],
    name: str,
    script: Callable[[Phone], Phone],
) -> Iterator[None]:
    """A call from "Desk Phone i" on a port that worker i serves, for each worker, each running
    ``script`` after its INVITE."""
    with ExitStack() as calls:
        for i in range(WORKERS):
            phone = script(Phone(f"Desk Phone {i}").invite())
            calls.enter_context(
                phone_call(daemon, phone, tmp_path, name=f"{name}-{i}", local_port=chosen[i][0])
            )
        yield


def test_a_moderators_mute_reaches_a_phone_on_each_worker(tmp_path: pathlib.Path) -> None:
    with workers_daemon(tmp_path) as (daemon, urls):
        chosen = ports_by_worker(daemon, urls, 1)
        with a_phone_on_each_worker(
            daemon,
            tmp_path,
            chosen,
            "on-worker",
            lambda phone: phone.expect_reinvite("sendonly").bye(),
        ):
            moderator = Moderator(daemon)
            for i in range(WORKERS):
                moderator.mute(moderator.phone(f"Desk Phone {i}")["attendeeId"])
        for i, url in enumerate(urls):
            daemon.wait_log("mute signalled", f"worker={i}")
            _, text = get(url + "/metrics")
            assert sample(text, "spaces_bridge_mute_relay_conference_to_phone_seconds_count") == 1
        assert daemon.stop() == 0, daemon.log()


def test_sigterm_to_the_supervisor_drains_every_worker_and_exits_0(
    tmp_path: pathlib.Path,
) -> None:
    with workers_daemon(tmp_path) as (daemon, urls):
        chosen = ports_by_worker(daemon, urls, 1)
        pids = worker_pids(daemon)
        with a_phone_on_each_worker(
            daemon, tmp_path, chosen, "drained", lambda phone: phone.expect_bye(timeout_ms=20000)
        ):
            moderator = Moderator(daemon)
            for i in range(WORKERS):
                moderator.phone(f"Desk Phone {i}")
            daemon.signal(signal.SIGTERM)
        assert daemon.stop() == 0, daemon.log()
        assert not [pid for pid in pids if alive(pid)]
        for i in range(WORKERS):
            assert daemon.log_has("draining: BYE sent", f"worker={i}"), daemon.log()


def test_a_worker_killed_stops_the_others_and_the_supervisor_exits_non_zero(
    tmp_path: pathlib.Path,
) -> None:
    with workers_daemon(tmp_path) as (daemon, _):
        pids = worker_pids(daemon)
        os.kill(pids[1], signal.SIGKILL)
        assert daemon.process is not None
        assert daemon.process.wait(20) == 1, daemon.log()
        assert not alive(pids[0])
        assert daemon.log_has("worker ended unexpectedly", "worker=1", "code=-9"), daemon.log()
        assert daemon.log_has("stopped", "worker=0"), daemon.log()


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: pathlib.Path) -> None:
    with workers_daemon(tmp_path) as (daemon, _):
        pids = worker_pids(daemon)
        assert daemon.process is not None
        daemon.process.kill()
        daemon.process.wait(10)
        wait_until(lambda: not any(alive(pid) for pid in pids), 15, "every worker gone")


def test_systemd_hears_the_supervisor_only_ready_once_all_are_and_watchdog_while_all_ping(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"}
        with workers_daemon(tmp_path, env=env) as (daemon, _):
            assert daemon.process is not None
            supervisor = daemon.process.pid
            ready = receive(sock, "READY=1", time.monotonic() + 10)[-1].split("\n")
            assert f"MAINPID={supervisor}" in ready
            assert any(line.startswith("STATUS=2 workers listening on udp:") for line in ready)
            lines = daemon.log().splitlines()
            told = next(  # the supervisor's line; each worker logs its own too
                i
                for i, line in enumerate(lines)
                if "spaces-bridge ready" in line and "workers=2" in line
            )
            for i in range(WORKERS):
                worker_ready = next(
                    n
                    for n, line in enumerate(lines)
                    if "worker ready" in line and f"worker={i}" in line
                )
                assert worker_ready < told, lines

            for _ in range(3):
                receive(sock, "WATCHDOG=1", time.monotonic() + 1.0)
            # A stalled worker stops the pings, as a stalled single daemon would.
            stalled = worker_pids(daemon)[1]
            os.kill(stalled, signal.SIGSTOP)
            try:
                time.sleep(0.3)  # what was already on its way
                sock.setblocking(False)
                while True:
                    try:
                        sock.recv(4096)
                    except BlockingIOError:
                        break
                sock.setblocking(True)
                with pytest.raises(AssertionError, match="no WATCHDOG=1"):
                    receive(sock, "WATCHDOG=1", time.monotonic() + 0.8)
            finally:
                os.kill(stalled, signal.SIGCONT)
            receive(sock, "WATCHDOG=1", time.monotonic() + 2.0)

            daemon.signal(signal.SIGTERM)
            receive(sock, "STOPPING=1", time.monotonic() + 10)
            assert daemon.stop() == 0, daemon.log()
