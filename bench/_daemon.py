"""What the SIP benchmarks in ``bench/`` share: starting the daemon (embedded or remote conference
server), Kamailio and sipp on loopback, pinned to separate cores, and reading /proc.

Not a benchmark itself. Every process is started here and stopped here, by its PID; everything
binds to 127.0.0.1 on free ports, and each sipp run has a timeout.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
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
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
HOST = "127.0.0.1"
#: The SIP server under test gets core 0 to itself (the issue's "one core for the daemon");
#: sipp, the bench script and any helper process share core 1.
SERVER_CORE, CLIENT_CORE = "0", "1"
TICK = os.sysconf("SC_CLK_TCK")
#: Bearer tokens of the benchmark's conference server: loopback only, nothing to protect.
MODERATOR_TOKEN = "bench-moderator-token-0123456789abcdef"
BRIDGE_TOKEN = "bench-bridge-token-0123456789abcdef"
#: Results one script leaves for the next (relay latency runs at half the measured max rate).
RESULTS = pathlib.Path(tempfile.gettempdir()) / "spaces-bridge-bench"

#: The benchmark measures the call path, not the flood protection (tests/interop/test_flood.py
#: covers that): per-source token buckets off (one source address places every call), bounds
#: above what the benchmarks hold, warnings-only logs.
LIMITS = """
[limits]
rate_per_source = 0
invites_per_source = 0
max_joining = 100000
max_transactions = 500000
max_dialogs = 200000
lobby_per_space = 100000
"""
SERVER = f"""
[server]
port = {{port}}
meeting_capacity = 200000
spaces = [{{{{ id = "demo" }}}}]
tokens = [
  {{{{ name = "console", role = "moderator", token = "{MODERATOR_TOKEN}" }}}},
  {{{{ name = "bridge", role = "bridge", token = "{BRIDGE_TOKEN}" }}}},
]
"""


def free_port() -> int:
    """A port free for both UDP and TCP on HOST."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


# -- /proc -----------------------------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Kamailio forks its workers)."""
    parents: dict[int, int] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent]
        found += children
        frontier += children
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time of ``pids`` (every thread of each) so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat(pid)
            total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5) fields 14, 15)
    return total / TICK


def rss_bytes(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", pathlib.Path(f"/proc/{pid}/status").read_text())
    assert match is not None
    return int(match[1]) * 1024


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` holds open (the entries of /proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def descendant(pid: int, name: str) -> int | None:
    """The first descendant of ``pid`` whose command name is ``name`` (the daemon's Janus)."""
    for child in tree(pid)[1:]:
        with contextlib.suppress(OSError):
            if pathlib.Path(f"/proc/{child}/comm").read_text().strip() == name:
                return child
    return None


def load_average() -> str:
    """The 1- and 5-minute load averages, as ``uptime`` prints them."""
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


# -- processes -------------------------------------------------------------------------------------
def pinned(core: str, *argv: str) -> list[str]:
    return ["taskset", "-c", core, *argv]


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: only ever the process we started."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_http(url: str, process: subprocess.Popen[bytes], log: pathlib.Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # an answer (401 without a token) is all we wait for
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within 20 s:\n{log.read_text()[-3000:]}")


@dataclass
class Target:
    """A SIP server under test: where it listens and which processes its CPU time is charged to."""

    name: str
    port: int
    pid: int
    ops: str | None = None
    log: pathlib.Path | None = None
    extra_pids: list[int] = field(default_factory=list)

    def pids(self) -> list[int]:
        return tree(self.pid)

    def metrics(self) -> str:
        assert self.ops is not None
        with urllib.request.urlopen(f"http://{self.ops}/metrics", timeout=10) as answer:
            text: str = answer.read().decode()
        return text

    def metric(self, name: str) -> float:
        """The sum of every sample of ``name`` (over its labels)."""
        pattern = rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$"
        return sum(float(m[1]) for m in re.finditer(pattern, self.metrics(), re.M))


@contextlib.contextmanager
def daemon(
    work: pathlib.Path,
    *,
    conference_url: str | None = None,
    server_port: int = 0,
    extra: str = "",
    gc_pauses_to: pathlib.Path | None = None,
    tracemalloc_to: pathlib.Path | None = None,
    relay: bool = False,
    media_ports: int = 200,
) -> Iterator[Target]:
    """``spaces-bridge run`` on SERVER_CORE, UDP only, warnings-only logs. Without
    ``conference_url`` it runs the embedded conference server (its API on ``server_port``).
    The media relay is off unless ``relay``: the signalling figures are compared with a stateless
    SIP responder that relays nothing, and sipp's calls send no RTP (``bench/media.py`` measures
    the relay). ``media_ports`` sizes ``[media] port_min..port_max`` (4 ports a relayed call).
    ``gc_pauses_to`` times every cyclic garbage collection and writes them (generation,
    seconds) to that file as JSON when the daemon exits: read it with :func:`gc_pauses`.
    ``tracemalloc_to`` (an experiment too: it slows the daemon) traces allocations and writes
    the top allocation sites to that file on each SIGUSR1."""
    port, ops = free_port(), f"{HOST}:{free_port()}"
    # An even port of the kernel's ephemeral range (above the mixer's 30000-32767), low enough
    # for the whole range to fit below 65536.
    media = min(free_port(), 65535 - media_ports) & ~1
    conference = (
        f'[conference]\nurl = "{conference_url}"\ntoken_env = "BENCH_BRIDGE_TOKEN"\n'
        if conference_url
        else SERVER.format(port=server_port)
    )
    config = work / "bridge.toml"
    config.write_text(
        f'[sip]\nlisten = ["udp:{HOST}:{port}"]\n'
        f'[media]\nhost = "{HOST}"\nport_min = {media}\nport_max = {media + media_ports}\n'
        f"relay = {'true' if relay else 'false'}\n"
        f'[ops]\nlisten = "{ops}"\nlog_level = "warning"\n'
        "[drain]\ngrace_seconds = 0\nbye_wait_seconds = 1\n" + LIMITS + conference + extra
    )
    log = work / "daemon.log"
    env = {**os.environ, "BENCH_BRIDGE_TOKEN": BRIDGE_TOKEN}
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(
                SERVER_CORE, *_command(gc_pauses_to, tracemalloc_to), "run", "--config", str(config)
            ),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_http(f"http://{ops}/readyz", process, log)
        yield Target("spaces-bridge", port, process.pid, ops, log)
    finally:
        # With many calls up the drain sends a BYE to each; the bench does not wait for that.
        stop(process, timeout=10)


#: Written to the file on SIGUSR1: allocation sites still holding memory, largest first.
TRACEMALLOC = """
import signal, tracemalloc
tracemalloc.start(4)
def dump(*_):
    stats = tracemalloc.take_snapshot().statistics("traceback")
    with open({path!r}, "a") as out:
        total = sum(s.size for s in stats)
        out.write(f"== {{total / 2**20:.1f}} MiB traced in {{len(stats)}} sites\\n")
        for s in stats[:25]:
            out.write(f"{{s.size / 2**20:8.2f}} MiB {{s.count:9}} blocks\\n")
            for line in s.traceback.format()[-4:]:
                out.write(f"    {{line}}\\n")
signal.signal(signal.SIGUSR1, dump)
"""


#: Times each collection (a callback costs about a microsecond); written out at exit.
GC_PAUSES = """
import atexit, gc, json, time
pauses, began = [], [0.0]
def timed(phase, info):
    if phase == "start":
        began[0] = time.perf_counter()
    else:
        pauses.append((info["generation"], time.perf_counter() - began[0], time.monotonic()))
gc.callbacks.append(timed)
atexit.register(lambda: open({path!r}, "w").write(json.dumps(pauses)))
"""


def gc_pauses(path: pathlib.Path, since: float, until: float) -> str:
    """One line on the collections ``gc_pauses_to`` recorded between two ``time.monotonic()``
    readings (the same clock in every process), per generation: how many, longest, total."""
    try:
        pauses = json.loads(path.read_text())
    except (OSError, ValueError):
        return "collector pauses: not recorded"
    parts = []
    for generation in (0, 1, 2):
        took = [took for gen, took, at in pauses if gen == generation and since <= at <= until]
        if took:
            parts.append(
                f"gen{generation} {len(took)}x max {max(took) * 1000:.1f} ms"
                f" (total {sum(took) * 1000:.0f} ms)"
            )
    return "collector pauses: " + ("; ".join(parts) or "none")


def _command(gc_pauses_to: pathlib.Path | None, tracemalloc_to: pathlib.Path | None) -> list[str]:
    if gc_pauses_to is None and tracemalloc_to is None:
        return [str(BIN / "spaces-bridge")]
    code = "import gc, sys\n"
    if gc_pauses_to is not None:
        code += GC_PAUSES.format(path=str(gc_pauses_to))
    if tracemalloc_to is not None:
        code += TRACEMALLOC.format(path=str(tracemalloc_to))
    code += "from bridge.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return [sys.executable, "-P", "-c", code]  # -P: PYTHONPATH (the compiled build) first


@contextlib.contextmanager
def conference_server(work: pathlib.Path, core: str = CLIENT_CORE) -> Iterator[tuple[str, int]]:
    """``spaces-bridge server`` on its own (remote mode); yields its base URL and PID."""
    port = free_port()
    config = work / "server.toml"
    config.write_text(SERVER.format(port=port))
    log = work / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(core, str(BIN / "spaces-bridge"), "server", "--config", str(config)),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://{HOST}:{port}"
        wait_http(f"{url}/api/spaces/demo/activemeeting", process, log)
        yield url, process.pid
    finally:
        stop(process)


# -- Kamailio --------------------------------------------------------------------------------------
KAMAILIO_CFG = """#!KAMAILIO
debug=0
log_stderror=yes
fork=yes
children=1
auto_aliases=no
dns=no
rev_dns=no
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


def kamailio_binary() -> str:
    """The kamailio binary; installed with apt-get when missing (needs root)."""
    found = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("kamailio is missing: run `sudo apt-get install -y kamailio` first")
    print("kamailio is missing: apt-get install -y kamailio", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "kamailio"], check=True, env=env)
    found = shutil.which("kamailio", path="/usr/sbin:/sbin:/usr/bin")
    if not found:
        raise SystemExit("apt-get installed kamailio but the binary is not on PATH")
    return found


@contextlib.contextmanager
def kamailio(work: pathlib.Path) -> Iterator[Target]:
    """Kamailio answering every request but ACK with a stateless 200 (``sl_send_reply``): one UDP
    worker on SERVER_CORE, the reference the daemon's CPU per call is compared with."""
    binary = kamailio_binary()
    modules = next(
        (
            str(p)
            for p in pathlib.Path("/usr/lib").glob("*/kamailio/modules")
            if (p / "sl.so").exists()
        ),
        "/usr/lib/kamailio/modules",
    )
    port = free_port()
    config = work / "kamailio.cfg"
    config.write_text(KAMAILIO_CFG.format(host=HOST, port=port, modules=modules))
    log = work / "kamailio.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(
                SERVER_CORE,
                *(binary, "-f", str(config), "-DD", "-E", "-m", "64", "-M", "8"),
                *("-w", str(work), "-Y", str(work)),
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while options(port) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"kamailio did not start:\n{log.read_text()[-3000:]}")
        yield Target("kamailio", port, process.pid, log=log)
    finally:
        stop(process)


def options(port: int, timeout: float = 0.3) -> bytes | None:
    """One OPTIONS over UDP; the answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        sock.sendto(
            (
                f"OPTIONS sip:ping@{HOST}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{time.monotonic_ns()};rport\r\n"
                f"From: <sip:bench@{HOST}>;tag=1\r\nTo: <sip:ping@{HOST}>\r\n"
                f"Call-ID: bench-{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            (HOST, port),
        )
        sock.settimeout(timeout)
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


# -- sipp ------------------------------------------------------------------------------------------
@dataclass
class SippRun:
    calls: int
    successful: int
    failed: int
    seconds: float
    """Wall time from start to exit."""
    retransmissions: int

    @property
    def lost(self) -> int:
        """Calls not counted successful: failed, or never finished before the timeout."""
        return self.calls - self.successful


def sipp_args(
    port: int,
    *,
    rate: float,
    calls: int,
    scenario: Sequence[str] = ("-sn", "uac"),
    limit: int | None = None,
    timeout: float = 20,
    extra: Sequence[str] = (),
) -> list[str]:
    """sipp on CLIENT_CORE against HOST:``port``, service ``demo``, UDP from one socket."""
    return pinned(
        CLIENT_CORE,
        shutil.which("sipp") or "sipp",
        f"{HOST}:{port}",
        *scenario,
        "-s", "demo", "-i", HOST, "-p", str(free_port()), "-t", "u1",
        "-r", f"{rate:g}", "-m", str(calls), "-l", str(limit or max(calls, 1000)),
        "-buff_size", "4194304", "-nostdin", "-trace_stat", "-fd", "1",
        "-timeout", f"{timeout:g}s", "-timeout_error", "-max_recv_loops", "10000",
        *extra,
    )  # fmt: skip


def sipp_stats(work: pathlib.Path) -> dict[str, str]:
    """The last line of sipp's ``-trace_stat`` file, by column name."""
    found = sorted(work.glob("*_.csv"))
    if not found:
        return {}
    header, *rows = found[-1].read_text().splitlines()
    if not rows:
        return {}
    return dict(zip(header.split(";"), rows[-1].split(";"), strict=False))


def sipp(port: int, *, rate: float, calls: int, timeout: float = 20, **kwargs: object) -> SippRun:
    """Run sipp to completion (or ``timeout``) and read its counters."""
    with tempfile.TemporaryDirectory(prefix="bench-sipp-") as name:
        work = pathlib.Path(name)
        args = sipp_args(port, rate=rate, calls=calls, timeout=timeout, **kwargs)  # type: ignore[arg-type]
        started = time.monotonic()
        subprocess.run(args, cwd=work, check=False, capture_output=True, timeout=timeout + 15)
        elapsed = time.monotonic() - started
        stats = sipp_stats(work)
    ok = int(stats.get("SuccessfulCall(C)", 0))
    return SippRun(
        calls=calls,
        successful=ok,
        failed=int(stats.get("FailedCall(C)", 0)),
        seconds=elapsed,
        retransmissions=int(stats.get("Retransmissions(C)", 0)),
    )


# -- report ----------------------------------------------------------------------------------------
def _version(argv: list[str], pattern: str) -> str:
    with contextlib.suppress(OSError):
        out = subprocess.run(argv, check=False, capture_output=True, text=True)
        match = re.search(pattern, out.stdout + out.stderr)
        if match:
            return match[1].rstrip(",.")
    return "not installed"


def build() -> str:
    """Which build of the sans-IO layers runs: the daemon inherits this process's PYTHONPATH,
    which ``make bench`` points at the mypyc-compiled copy (scripts/compile.py) when it was built."""
    spec = importlib.util.find_spec("bridge.sip.parser")
    origin = spec.origin if spec is not None else None
    compiled = origin is not None and not origin.endswith(".py")
    return "bridge: sans-IO layers compiled (mypyc)" if compiled else "bridge: pure Python"


def machine(*, with_kamailio: bool = False) -> str:
    """Cores, CPU model, kernel and the versions that matter for the figures."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    parts = [
        f"{os.cpu_count()} cores ({model})",
        f"Linux {platform.release()}",
        f"Python {platform.python_version()}",
        f"uvloop {importlib.metadata.version('uvloop')}",
        "sipp " + _version(["sipp", "-v"], r"SIPp v?(\S+)"),
        build(),
    ]
    if with_kamailio:
        parts.append("kamailio " + _version([kamailio_binary(), "-v"], r"kamailio (\S+)"))
    return "; ".join(parts)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (what docs/performance.md quotes)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100) of ``samples``."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def busy_benchmarks() -> list[str]:
    """sipp processes already running (someone else's benchmark would skew every figure)."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv and pathlib.Path(argv[0].decode(errors="replace")).name == "sipp":
                    found.append(f"{entry.name}: {b' '.join(argv).decode(errors='replace')}")
    return found


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores' worth of CPU the whole machine used over ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(f) for f in pathlib.Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle, iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    busy1, total1 = sample()
    time.sleep(seconds)
    busy2, total2 = sample()
    return (busy2 - busy1) / max(1, total2 - total1) * (os.cpu_count() or 1)


def cpu_ticks() -> tuple[int, int]:
    """(steal, all) clock ticks of the whole machine so far, from /proc/stat. Steal is time the
    hypervisor ran someone else while this guest had work: a benchmark's figures under steal
    measure the host's neighbours too."""
    fields = [int(f) for f in pathlib.Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return fields[7], sum(fields)


def steal_since(before: tuple[int, int]) -> float:
    """Percent of the machine's CPU time stolen by the hypervisor since ``before``."""
    steal, total = cpu_ticks()
    return (steal - before[0]) / max(1, total - before[1]) * 100


def quiet_machine(wait: float = 180) -> None:
    """Wait (up to ``wait`` s) until no other sipp runs and the machine is nearly idle: two
    benchmarks at once measure neither. After ``wait`` it goes on, and says so."""
    deadline = time.monotonic() + wait
    while True:
        busy = busy_benchmarks()
        used = busy_cores()
        if not busy and used < 0.15:
            return
        if time.monotonic() > deadline:
            print(f"WARNING: the machine is not quiet ({used:.2f} cores busy): figures are skewed")
            return
        why = busy[0][:100] if busy else f"{used:.2f} cores busy"
        print(f"waiting for a quiet machine: {why}", flush=True)
        time.sleep(4)
