"""Run the real daemon as a subprocess on free loopback ports, and real SIP peers against it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = pathlib.Path(__file__).resolve().parent / "scenarios"
LOOPBACK = "127.0.0.1"
#: The moderator token of the embedded conference server the tests configure.
MODERATOR = "moderator-token-for-tests-0123456789"
#: The embedded conference server of every test daemon unless a test brings its own: a free port,
#: a moderator token the tests act with, and spaces for each policy.
SERVER = f"""
[server]
port = 0
tokens = [{{ name = "console", role = "moderator", token = "{MODERATOR}" }}]
spaces = [
  {{ id = "demo" }},
  {{ id = "lobby", guest_policy = "ASK_MODERATOR" }},
  {{ id = "closed", guest_policy = "ALWAYS_DENY" }},
  {{ id = "entry", mute_on_entry = true }},
  {{ id = "strict", prevent_unmuting = true }},
]
"""


def free_port(host: str = LOOPBACK, *, both: bool = True) -> int:
    """A port free for UDP (and TCP when ``both``) on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            if not both:
                return port
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def options_ping(host: str, port: int, timeout: float = 0.5) -> bytes | None:
    """Send one OPTIONS over UDP and return the response bytes, or None on timeout."""
    return probe(host, port, "OPTIONS", "", timeout)


def probe(
    host: str,
    port: int,
    method: str,
    headers: str,
    timeout: float = 0.5,
    *,
    user: str = "ping",
    local_port: int = 0,
    local_host: str | None = None,
) -> bytes | None:
    """Send one out-of-dialog request over UDP (``headers``: extra lines, LF-separated) from
    ``local_host`` (default: ``host``) and ``local_port`` (default: any) and return the first
    final response, or None on timeout."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    extra = "".join(f"{line}\r\n" for line in headers.splitlines() if line)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((local_host or host, local_port))
        local_port = sock.getsockname()[1]
        h = f"[{host}]" if ":" in host else host
        local = local_host or host
        me = f"[{local}]" if ":" in local else local
        sock.sendto(
            (
                f"{method} sip:{user}@{h}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {me}:{local_port};branch=z9hG4bK{time.monotonic_ns()};rport\r\n"
                f"From: <sip:probe@{me}>;tag=probe\r\nTo: <sip:{user}@{h}>\r\n"
                f"Call-ID: probe-{time.monotonic_ns()}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
                f"Contact: <sip:probe@{me}:{local_port}>\r\n{extra}"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            (host, port),
        )
        sock.settimeout(timeout)
        try:
            while True:
                # Only the daemon's final answer counts: a stray datagram (a late RTP packet
                # aimed at this ephemeral port's previous owner) would make a daemon that is not
                # listening yet look ready.
                data, source = sock.recvfrom(65535)
                if source[1] != port or not data.startswith(b"SIP/2.0 "):
                    continue
                if not data.startswith(b"SIP/2.0 100 "):
                    return data
        except TimeoutError:
            return None


@dataclass
class Daemon:
    """A running ``spaces-bridge run``. ``stop()`` sends SIGTERM and returns the exit code."""

    workdir: pathlib.Path
    port: int
    host: str = LOOPBACK
    tls_port: int | None = None
    grace: float = 0.0
    extra_config: str = ""
    sip_config: str = ""
    """Extra lines for the ``[sip]`` table the harness writes."""
    media_host: str | None = None
    """``[media] host`` (default: ``host``)."""
    media_ports: tuple[int, int] | None = None
    """``[media] port_min, port_max`` (default: 401 ports from a free one)."""
    media_config: str = ""
    """Extra lines for the ``[media]`` table the harness writes."""
    env: dict[str, str] = field(default_factory=dict)
    stopping: bool = False
    ops_port: int = field(default_factory=lambda: free_port(LOOPBACK))
    process: subprocess.Popen[bytes] | None = None
    log_path: pathlib.Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "daemon.log"
        # free_port() probes independently: two probes can return the same port.
        while self.ops_port in (self.port, self.tls_port):
            self.ops_port = free_port(LOOPBACK)

    def config_text(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        listen = [f"udp:{h}:{self.port}", f"tcp:{h}:{self.port}"]
        tls = ""
        if self.tls_port is not None:
            listen.append(f"tls:{h}:{self.tls_port}")
            tls = (
                f'tls_certificate = "{self.workdir / "cert.pem"}"\n'
                f'tls_private_key = "{self.workdir / "key.pem"}"\n'
            )
        media_host = self.media_host or self.host
        media_min = free_port(media_host, both=False) & ~1
        media_min, media_max = self.media_ports or (media_min, media_min + 400)
        return (
            f"[sip]\nlisten = {listen!r}\n".replace("'", '"')
            + self.sip_config
            + tls
            + f'\n[media]\nhost = "{media_host}"\nport_min = {media_min}\nport_max = {media_max}\n'
            + self.media_config
            + f"\n[drain]\ngrace_seconds = {self.grace}\nbye_wait_seconds = 2\n"
            + self.extra_config
            + (
                ""
                if "[server]" in self.extra_config or "[conference]" in self.extra_config
                else SERVER
            )
            + ("" if "[ops]" in self.extra_config else f'\n[ops]\nlisten = "{self.ops}"\n')
        )

    @property
    def ops(self) -> str:
        return f"{LOOPBACK}:{self.ops_port}"

    @property
    def ops_url(self) -> str:
        return f"http://{self.ops}"

    def start(self, timeout: float = 15.0) -> Daemon:
        config = self.workdir / "bridge.toml"
        config.write_text(self.config_text())
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bridge", "run", "--config", str(config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited {self.process.returncode}:\n{self.log()}")
            # UDP answers while the other listeners are still opening: ready means the daemon
            # said so (it logs "spaces-bridge ready" once every listener is up) and answers.
            if self.log_has(r"spaces-bridge ready") and options_ping(self.host, self.port, 0.2):
                return self
            time.sleep(0.02)
        raise AssertionError(f"daemon did not answer OPTIONS within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api_url(self) -> str:
        """The conference API's base URL, as the daemon logged it at start."""
        match = re.search(r"conference\b.*\burl=(http://[^\s]+)", self.log())
        assert match is not None, f"no conference url in the log:\n{self.log()}"
        return match[1].strip("'\"")

    def log_has(self, *patterns: str) -> bool:
        """Whether one line of the log matches every regex in ``patterns``, in any order (the
        console renderer sorts keys, and may quote values)."""
        return any(
            all(re.search(p, line) for p in patterns)
            for line in self.log().replace("'", "").replace('"', "").splitlines()
        )

    def wait_log(self, *patterns: str, timeout: float = 5.0) -> None:
        """Wait until a line matches ``patterns``: the daemon logs an event just after it sends
        the message that lets the peer finish, so a log line may trail the peer's exit."""
        deadline = time.monotonic() + timeout
        while not self.log_has(*patterns):
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matching {patterns}:\n{self.log()[-4000:]}")
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.stopping = self.stopping or sig in (signal.SIGTERM, signal.SIGINT)

    def stop(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            if not self.stopping:  # a second SIGTERM would only race the first drain's exit
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"daemon ignored SIGTERM:\n{self.log()}") from None
        return self.process.returncode


@contextlib.contextmanager
def running_daemon(workdir: pathlib.Path, **kwargs: object) -> Iterator[Daemon]:
    daemon = Daemon(workdir, port=free_port(str(kwargs.get("host", LOOPBACK))), **kwargs)  # type: ignore[arg-type]
    daemon.start()
    try:
        yield daemon
    finally:
        code = daemon.stop()
        assert code == 0, f"daemon exit code {code}:\n{daemon.log()}"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: `make test` installs it (scripts/install-peers.sh)")
    return path


def sipp(
    daemon: Daemon,
    scenario: str,
    *,
    workdir: pathlib.Path,
    transport: str = "u1",
    service: str = "demo",
    calls: int = 1,
    rate: float = 10,
    version_header: str = "X-Phone: legacy",
    target_port: int | None = None,
    timeout: float = 60,
    extra: tuple[str, ...] = (),
    local_port: int | None = None,
    local_host: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one sipp scenario to completion; returns the process (check ``returncode == 0``).
    ``local_port``: the phone's source port (default: a free one); ``local_host``: its address
    (default: the daemon's)."""
    local_host = local_host or daemon.host
    port = local_port or free_port(local_host)
    args = [
        need("sipp"),
        f"[{daemon.host}]:{target_port or daemon.port}"
        if ":" in daemon.host
        else f"{daemon.host}:{target_port or daemon.port}",
        "-sf", str(SCENARIOS / scenario),
        "-s", service,
        "-t", transport,
        "-i", local_host,
        "-p", str(port),
        "-mp", str(free_port(local_host, both=False)),
        "-m", str(calls),
        "-r", str(rate),
        "-key", "vh", version_header,
        "-timeout", f"{int(timeout)}s",
        "-timeout_error",
        "-max_recv_loops", "1000",
        "-buff_size", "4194304",
        "-nostdin",
        "-trace_err", "-error_file", str(workdir / f"{scenario}.errors.log"),
        "-trace_stat", "-stf", str(workdir / f"{scenario}.stat.csv"),
        *extra,
    ]  # fmt: skip
    return subprocess.run(
        args, cwd=workdir, capture_output=True, text=True, timeout=timeout + 30, check=False
    )


def explain(result: subprocess.CompletedProcess[str], daemon: Daemon, workdir: pathlib.Path) -> str:
    errors = "".join(p.read_text(errors="replace")[-3000:] for p in workdir.glob("*.errors.log"))
    return (
        f"sipp exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}\n"
        f"--- sipp errors ---\n{errors}\n--- daemon log ---\n{daemon.log()[-5000:]}"
    )
