"""What the SIP benchmarks share: the daemon or Kamailio on core 0, sipp on core 1, and the
process's CPU time and resident size read from /proc.

Every benchmark binds to 127.0.0.1 only and stops what it started, by PID.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
HOST = "127.0.0.1"
#: The daemon (or Kamailio) runs on this core, sipp on the other (SPEC: one core for the daemon).
SERVER_CORE, SIPP_CORE = "0", "1"
TICK = os.sysconf("SC_CLK_TCK")
#: Rate limits off, bounds above what the benchmarks hold, warnings only: the benchmark measures
#: the call path, not the flood protection (tested in tests/interop/test_flood.py).
#: The moderator token of the benchmark's embedded server (loopback only, nothing to protect).
MODERATOR = "bench-moderator-token-0123456789"
BENCH_CONFIG = """
[limits]
rate_per_source = 0
invites_per_source = 0
max_joining = 100000
max_transactions = 500000
max_dialogs = 200000

[server]
port = {server_port}
meeting_capacity = 200000
spaces = [{{ id = "demo" }}]
tokens = [{{ name = "console", role = "moderator", token = "{moderator}" }}]
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((HOST, 0))
        return int(udp.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def rss_bytes(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", pathlib.Path(f"/proc/{pid}/status").read_text())
    assert match is not None
    return int(match[1]) * 1024


def children_of(pid: int) -> list[int]:
    """``pid`` and every process whose parent it is (Kamailio's workers)."""
    found = [pid]
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    found.append(int(entry.name))
    return found


@dataclass
class Target:
    """A SIP server under test: where it listens and which processes to charge."""

    name: str
    port: int
    pid: int
    ops: str | None = None

    def pids(self) -> list[int]:
        return children_of(self.pid)

    def metrics(self) -> str:
        assert self.ops is not None
        with urllib.request.urlopen(f"http://{self.ops}/metrics", timeout=5) as answer:
            text: str = answer.read().decode()
        return text


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def daemon(extra: str = "", server_port: int = 0) -> Iterator[Target]:
    """``spaces-bridge run`` with the embedded conference server (its API on ``server_port``),
    pinned to SERVER_CORE."""
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        port, ops = free_port(), f"{HOST}:{free_port()}"
        config = pathlib.Path(work) / "bridge.toml"
        config.write_text(
            f'[sip]\nlisten = ["udp:{HOST}:{port}"]\n'
            f'[media]\nhost = "{HOST}"\nport_min = 20000\nport_max = 60000\n'
            f'[ops]\nlisten = "{ops}"\nlog_level = "warning"\njson_logs = false\n'
            + BENCH_CONFIG.format(server_port=server_port, moderator=MODERATOR)
            + extra
        )
        log = pathlib.Path(work) / "daemon.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    SERVER_CORE,
                    str(BIN / "spaces-bridge"),
                    "run",
                    "--config",
                    str(config),
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_http(f"http://{ops}/readyz", process, log)
            yield Target("spaces-bridge", port, process.pid, ops)
        finally:
            _stop(process)


def _wait_http(url: str, process: subprocess.Popen[bytes], log: pathlib.Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the daemon exited:\n{log.read_text()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            return
        time.sleep(0.1)
    raise SystemExit(f"the daemon did not become ready:\n{log.read_text()}")


KAMAILIO_CFG = """#!KAMAILIO
debug=0
log_stderror=yes
fork=yes
children=1
auto_aliases=no
listen=udp:{host}:{port}
mpath="{modules}"
loadmodule "sl.so"
request_route {{
    if (method == "ACK") {{
        exit;
    }}
    sl_send_reply("200", "OK");
    exit;
}}
"""


def ensure_kamailio() -> str:
    """The kamailio binary, installed with apt-get when missing (as root)."""
    found = shutil.which("kamailio") or (
        os.path.exists("/usr/sbin/kamailio") and "/usr/sbin/kamailio"
    )
    if found:
        return str(found)
    if os.geteuid() != 0:
        raise SystemExit("kamailio is missing: sudo apt-get install -y kamailio")
    print("installing kamailio with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "kamailio"], check=True, env=env)
    return "/usr/sbin/kamailio"


def kamailio_version() -> str:
    out = subprocess.run(
        [ensure_kamailio(), "-v"], check=False, capture_output=True, text=True
    ).stdout
    match = re.search(r"version: kamailio (\S+)", out)
    return match[1] if match else "?"


@contextlib.contextmanager
def kamailio() -> Iterator[Target]:
    """Kamailio answering every request 200 statelessly (``sl_send_reply``), pinned to
    SERVER_CORE, one UDP worker: the reference a SIP responder is measured against."""
    binary = ensure_kamailio()
    modules = next(
        (
            p
            for p in (
                "/usr/lib/x86_64-linux-gnu/kamailio/modules",
                "/usr/lib/aarch64-linux-gnu/kamailio/modules",
                "/usr/lib/kamailio/modules",
            )
            if os.path.isdir(p)
        ),
        "/usr/lib/kamailio/modules",
    )
    with tempfile.TemporaryDirectory(prefix="bench-kamailio-") as work:
        port = free_port()
        config = pathlib.Path(work) / "kamailio.cfg"
        config.write_text(KAMAILIO_CFG.format(host=HOST, port=port, modules=modules))
        log = pathlib.Path(work) / "kamailio.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    SERVER_CORE,
                    binary,
                    "-f",
                    str(config),
                    "-DD",
                    "-E",
                    "-w",
                    work,
                    "-Y",
                    work,
                    "-m",
                    "64",
                    "-M",
                    "8",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 10
            while len(children_of(process.pid)) < 2:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"kamailio did not start:\n{log.read_text()}")
                time.sleep(0.1)
            time.sleep(0.5)
            yield Target("kamailio", port, process.pid)
        finally:
            _stop(process)


@dataclass
class SippResult:
    calls: int
    successful: int
    failed: int
    seconds: float


def sipp(
    target: Target,
    *,
    rate: float,
    calls: int,
    scenario: list[str],
    limit: int | None = None,
    timeout: float = 120,
    service: str = "demo",
) -> SippResult:
    """Run sipp on SIPP_CORE to completion; ``scenario`` is ``["-sn", "uac"]`` or ``["-sf", F]``."""
    with tempfile.TemporaryDirectory(prefix="bench-sipp-") as work:
        args = [
            "taskset", "-c", SIPP_CORE, shutil.which("sipp") or "sipp",
            f"{HOST}:{target.port}", *scenario, "-s", service,
            "-i", HOST, "-p", str(free_port()), "-t", "u1",
            "-r", str(rate), "-m", str(calls), "-l", str(limit or max(calls, 1000)),
            "-buff_size", "4194304", "-nostdin", "-trace_stat", "-fd", "1",
            "-timeout", str(int(timeout)), "-timeout_error", "-max_recv_loops", "10000",
        ]  # fmt: skip
        started = time.monotonic()
        subprocess.run(args, cwd=work, check=False, capture_output=True, timeout=timeout + 30)
        elapsed = time.monotonic() - started
        stats = next(pathlib.Path(work).glob("*_.csv"), None)
        if stats is None:
            return SippResult(calls, 0, calls, elapsed)
        header, *rows = stats.read_text().splitlines()
        names = header.split(";")
        last = dict(zip(names, rows[-1].split(";"), strict=False))
        ok = int(last["SuccessfulCall(C)"])
        failed = int(last["FailedCall(C)"])
        return SippResult(calls, ok, failed + (calls - ok - failed), elapsed)


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    sipp_version = subprocess.run(
        ["sipp", "-v"], check=False, capture_output=True, text=True
    ).stdout
    version = re.search(r"SIPp v?(\S+)", sipp_version)
    return (
        f"{os.cpu_count()} cores, {model}; Linux {platform.release()}; "
        f"Python {platform.python_version()}; sipp {version[1].rstrip(',.') if version else '?'}"
    )


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, rule, *body])
