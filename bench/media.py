"""The RTP relay under load: N concurrent calls, each with a phone and a meeting (the mixer) sending
20 ms G.711 both ways from a load process on core 1, the relay on core 0 (uvloop, the daemon's
collector settings). Prints the relay's CPU per relayed packet, packets/s, loss and the added
latency (p50/p99/max) of each direction, against the targets: at 500 calls (50,000 relayed
packets/s) at most 20 µs of CPU per packet on one core, zero loss, p99 added latency under 2 ms.

Three processes, every one started and stopped here by its PID, all on 127.0.0.1:

- **the relay** (``--role relay``, ``taskset -c 0``): a :class:`bridge.media.relay.Relay` with N
  legs, each configured as a call would be (PCMU, telephone-events 101, the phone's RTP and RTCP
  addresses, the meeting endpoint, both gates open), opened in 5 groups over ``--stagger``
  seconds (the RTCP interval: calls opened together have their reports due on the same tick of
  the relay's 1 s timer, which then holds up every packet for longer). It reports the legs'
  ports and, on each ``mark``, its CPU time (getrusage), ``Relay.busy``, the counters, its
  collections and how long each run of its 1 s timer took. A second row (``--no-reference``
  skips it) runs a minimal uvloop forwarder (two sockets a call, ``sendto`` in
  ``datagram_received``, nothing else) under the same load: the floor of a Python relay here.
- **the load** (``--role load``, ``taskset -c 1``): one thread, non-blocking sockets and epoll.
  ``--per-socket`` calls share a phone socket pair (RTP, and RTCP for the relay's reports) and a
  meeting socket. Each call sends one 172-byte packet every 20 ms each way, the calls spread
  evenly over the 20 ms (phones are not in step; the meeting side half a period after the phone
  side); whatever is due is sent at each wake-up of the loop (epoll's 1 ms resolution at most).
  The first 16 bytes of each 160-byte payload are the send time (CLOCK_REALTIME, ns), the call
  and the packet number, then a marker: the relay passes 20 ms payloads through whole in both
  directions (its packetizer cuts 160-byte frames from 160-byte payloads), and the load checks
  the marker, the length and that each packet comes from the call's own port (``mangled``,
  ``misrouted``; the relay's keepalives are counted apart). The receive time is the kernel's
  (SO_TIMESTAMPNS: stamped when the relay's ``sendto`` hands the packet to loopback), so the
  load's own delays in reading do not count. Added latency = receive time - send time: the
  load's ``sendto`` into loopback, the wait in the relay's socket and loop, its work, its
  ``sendto``.
- **this script** (core 1 too, asleep while measuring): warm-up (``--warmup``), then the measured
  window (``--seconds``): ``mark`` to both, sleep, ``stop`` to the load, ``mark`` to the relay;
  after 200 ms (in-flight packets arrive) the load reports. Loss = packets sent in the window -
  packets received that carry a send time in the window, per direction.

Both children run at nice -10 (as bench/relay.py; root only), or SCHED_FIFO with ``--realtime``.
The load's own CPU, achieved rate and schedule lag are printed: when it cannot keep up, the
figures measure the load generator, not the relay, and the script says so. So is the CPU other
processes used during each window (the machine may be shared): a row measured while they took
more than 5 % of a core is measured again (``--retries``) after waiting for a quiet machine.

Run: .venv/bin/python bench/media.py [--calls 100,250,500] [--seconds 10] [--no-reference]
     [--realtime] [--profile FILE]  (an extra, unmeasured run at the largest N with py-spy on
     the relay; read it with bench/hotspots.py FILE --per-call-us <CPU µs per packet>)
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import gc
import itertools
import json
import os
import pathlib
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import _daemon
import structlog
import uvloop
from _daemon import BIN, CLIENT_CORE, HOST, SERVER_CORE, machine, pinned, table

from bridge.app import GC_THRESHOLDS
from bridge.media.relay import PORTS_PER_CALL, Relay

PERIOD_NS = 20_000_000
"""20 ms: one packet per call per direction."""
PACKETS_PER_SECOND = 50
"""Per call per direction."""
PAYLOAD = 160
MAGIC = b"BMED"
_HEAD = struct.Struct("!BBHIIQII")  # RTP header, then the send time (ns), the call, the packet
_STAMP = struct.Struct("!QII")
_TIMESPEC = struct.Struct("@qq")
TAIL = MAGIC + b"\xff" * (PAYLOAD - 16 - len(MAGIC))
PACKET_SIZE = _HEAD.size + len(TAIL)
SILENCE = b"\xff" * PAYLOAD
"""A keepalive's payload (PCMU silence)."""
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the stdlib does not export it
SO_RCVBUFFORCE = 33  # Linux: above rmem_max, as root
RCVBUF = 4 << 20
_Send = Callable[[bytes, tuple[str, int]], int]
REALTIME_PRIORITY = 10
STAGGER_GROUPS = 5
"""The calls start in this many groups over ``--stagger`` seconds (the RTCP interval): calls
that start together have their RTCP reports due on the same tick of the relay's 1 s timer."""
READ_BATCH = 8
"""Packets the load reads from one socket before it looks at its send schedule again."""
DRAIN = 0.2
"""Seconds between the end of sending and the count: packets in flight arrive meanwhile."""

TARGET_CALLS = 500
TARGET_US = 20.0
TARGET_P99_MS = 2.0
SLOW_NS = int(TARGET_P99_MS * 1e6)
REFERENCE_US = 11.4
"""The issue's minimal uvloop forwarder at 50,000 packets/s (another machine)."""
STEAL_WARNING = 3.0  # percent, as bench/callrate.py
DISTURBED = 0.05
"""Share of a core other processes may use during a row before it is measured again."""
QUIET_FORKS = 2
"""Processes the machine may start during a row before it is measured again."""


# -- the children's command channel ----------------------------------------------------------------
class Lines:
    """Lines from a file descriptor, read with os.read (no buffering behind select's back)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""

    def ready(self) -> list[str]:
        """The complete lines after one read (the fd is readable); ["quit"] at end of file."""
        chunk = os.read(self.fd, 65536)
        if not chunk:
            return ["quit"]
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode().strip() for line in lines if line.strip()]

    def line(self, timeout: float | None = None) -> str:
        """The next line, waiting up to ``timeout`` seconds (forever when None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self.fd], [], [], left)
            if not readable:
                raise TimeoutError("no answer")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("the process closed its output")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the relay process (core 0) --------------------------------------------------------------------
@dataclass
class _Forward(asyncio.DatagramProtocol):
    """The reference forwarder's socket: each datagram goes out of ``peer`` to ``destination``."""

    destination: tuple[str, int]
    peer: asyncio.DatagramTransport | None = None
    transport: asyncio.DatagramTransport | None = None
    packets: int = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not isinstance(transport, asyncio.DatagramTransport): uvloop's is not one.
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.peer is not None
        self.peer.sendto(data, self.destination)
        self.packets += 1


class _Timed:
    """How long each run of a timer's callback took (seconds)."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    def wrap(self, callback: Callable[[], None]) -> Callable[[], None]:
        durations, clock = self.durations, time.perf_counter

        def timed() -> None:
            started = clock()
            callback()
            durations.append(clock() - started)

        return timed


def _factory(protocol: _Forward) -> Callable[[], _Forward]:
    return lambda: protocol


async def relay_process(forwarder: bool, port_min: int, stagger: float) -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    loop = asyncio.get_running_loop()
    commands = Lines(sys.stdin.fileno())
    calls: list[list[int]] = json.loads(commands.line())["calls"]  # [rtp, rtcp, meeting] a call
    relay: Relay | None = None
    housekeeping = _Timed()
    forwards: list[tuple[_Forward, _Forward]] = []
    legs: list[list[int]] = []
    if forwarder:
        for rtp, _rtcp, meeting in calls:
            to_meeting, to_phone = _Forward((HOST, meeting)), _Forward((HOST, rtp))
            phone_side, _ = await loop.create_datagram_endpoint(
                _factory(to_meeting), local_addr=(HOST, 0)
            )
            meeting_side, _ = await loop.create_datagram_endpoint(
                _factory(to_phone), local_addr=(HOST, 0)
            )
            to_meeting.peer, to_phone.peer = meeting_side, phone_side
            forwards.append((to_meeting, to_phone))
            legs.append(
                [
                    phone_side.get_extra_info("sockname")[1],
                    meeting_side.get_extra_info("sockname")[1],
                ]
            )
    else:
        relay = Relay(HOST, port_min, port_min + PORTS_PER_CALL * len(calls) + 400, prompts=None)
        # Its 1 s timer (keepalives, RTCP reports) runs for every call at once: timed, since it
        # holds up every packet meanwhile. The timer reschedules itself through the attribute.
        setattr(relay, "_housekeeping", housekeeping.wrap(relay._housekeeping))  # noqa: B010
        for number, (rtp, rtcp, meeting) in enumerate(calls):
            if stagger and number and number % -(-len(calls) // STAGGER_GROUPS) == 0:
                await asyncio.sleep(stagger / STAGGER_GROUPS)
            leg = await relay.open()
            if leg is None:
                raise SystemExit(f"relay: no port block for call {number} (range exhausted)")
            leg.configure("PCMU", 0, 101, (HOST, rtp), (HOST, rtcp), f"bench-{number}@{HOST}")
            leg.connect_meeting(HOST, meeting, "PCMU", 0)
            leg.set_gates(send=True, hear=True)
            legs.append([leg.port, leg.meeting_port])
    # The daemon's collector settings (bridge/app.py): what lives now is frozen out of the walks.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    say({"legs": legs})
    done = loop.create_future()

    def snapshot() -> dict[str, Any]:
        cpu, wall = cpu_now(), time.perf_counter()
        if relay is not None:
            counters = asdict(relay.counters())
            busy = relay.busy
        else:
            to_meeting = sum(f.packets for f, _ in forwards)
            to_phone = sum(f.packets for _, f in forwards)
            counters = {
                "phone_packets": to_meeting,
                "to_meeting_packets": to_meeting,
                "meeting_packets": to_phone,
                "to_phone_packets": to_phone,
            }
            busy = 0.0
        return {
            "cpu": cpu,
            "wall": wall,
            "busy": busy,
            "counters": counters,
            "gc": [stats["collections"] for stats in gc.get_stats()],
            "housekeeping": housekeeping.durations,
        }

    def on_command() -> None:
        for command in commands.ready():
            if command == "mark":
                say(snapshot())
            elif command == "quit" and not done.done():
                done.set_result(None)

    loop.add_reader(commands.fd, on_command)
    await done
    loop.remove_reader(commands.fd)
    if relay is not None:
        relay.close()
    for pair in forwards:
        for forward in pair:
            if forward.transport is not None:
                forward.transport.close()


# -- the load process (core 1) ---------------------------------------------------------------------
def _socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    return sock


def _rtp_pair() -> tuple[socket.socket, socket.socket]:
    """An even RTP port and the RTCP port after it (the relay sends its reports there)."""
    for _ in range(200):
        rtp = _socket()
        port = rtp.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            try:
                return rtp, _socket(port + 1)
            except OSError:
                pass
        rtp.close()
    raise RuntimeError("no free RTP/RTCP port pair")


@dataclass
class Direction:
    """What one side of the load received (the other side sent)."""

    latencies: array.array[int] = field(default_factory=lambda: array.array("q"))
    received: int = 0
    mangled: int = 0
    misrouted: int = 0
    keepalives: int = 0
    before: int = 0
    """Packets sent before the window (warm-up), read during it: not counted."""
    slow: array.array[int] = field(default_factory=lambda: array.array("q"))
    """Send times of the packets slower than the p99 target: do they come in bursts?"""

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        bursts: list[list[int]] = []  # [first, last] send times, split where 100 ms pass
        for sent in sorted(self.slow):
            if bursts and sent - bursts[-1][1] <= 100_000_000:
                bursts[-1][1] = sent
            else:
                bursts.append([sent, sent])
        starts = [first for first, _ in bursts]
        gaps = sorted(b - a for a, b in itertools.pairwise(starts))

        def at(q: float) -> float:
            if not ordered:
                return float("nan")
            return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000

        return {
            "received": self.received,
            "mangled": self.mangled,
            "misrouted": self.misrouted,
            "keepalives": self.keepalives,
            "p50_us": at(0.5),
            "p99_us": at(0.99),
            "p999_us": at(0.999),
            "max_us": ordered[-1] / 1000 if ordered else float("nan"),
            "slow": len(self.slow),
            "bursts": len(bursts),
            "longest_burst_ms": max((b - a for a, b in bursts), default=0) / 1e6,
            "burst_every_s": gaps[len(gaps) // 2] / 1e9 if gaps else 0.0,
        }


class Load:
    """The phones and the meeting of every call: a paced sender and a reader on one epoll."""

    def __init__(self, calls: int, per_socket: int) -> None:
        self.calls = calls
        groups = -(-calls // per_socket)
        self.per_socket = per_socket
        self.phones = [_rtp_pair() for _ in range(groups)]
        self.meetings = [_socket() for _ in range(groups)]
        for sock in (*(rtp for rtp, _ in self.phones), *self.meetings):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.to_meeting = Direction()  # read on the meeting sockets
        self.to_phone = Direction()  # read on the phones' RTP sockets
        self.rtcp = 0
        self.window_start = 1 << 62  # ns, CLOCK_REALTIME: sent before it is warm-up
        self.marked = False
        self.sending = True
        self.sent_phone = self.sent_meeting = self.send_errors = 0
        self.lags: array.array[int] = array.array("q")
        self.cpu = [0.0, 0.0]
        self.wall = [0, 0]

    def hello(self) -> dict[str, Any]:
        return {
            "phones": [[rtp.getsockname()[1], rtcp.getsockname()[1]] for rtp, rtcp in self.phones],
            "meetings": [sock.getsockname()[1] for sock in self.meetings],
        }

    def _reader(
        self, sock: socket.socket, into: Direction, sources: Sequence[int]
    ) -> Callable[[], None]:
        """Reads up to READ_BATCH packets of ``sock``: each one's latency, if it was sent in the
        window. Not dry: the sends that fall due meanwhile would wait, and leave in a burst."""
        recvmsg, unpack, timespec = sock.recvmsg, _STAMP.unpack_from, _TIMESPEC.unpack
        time_ns = time.time_ns

        def read() -> None:
            for _ in range(READ_BATCH):
                try:
                    data, ancillary, _, source = recvmsg(256, 64)
                except BlockingIOError:
                    return
                if ancillary:
                    seconds, nanoseconds = timespec(ancillary[0][2])
                    arrived = seconds * 1_000_000_000 + nanoseconds
                else:
                    arrived = time_ns()
                if len(data) != PACKET_SIZE or data[28:32] != MAGIC:
                    if data[12:] == SILENCE:  # the relay's: a call sent nothing for 1 s
                        into.keepalives += self.marked
                    else:
                        into.mangled += 1
                    continue
                sent, call, _number = unpack(data, 12)
                if sent < self.window_start:
                    into.before += 1
                    continue
                into.received += 1
                into.latencies.append(arrived - sent)
                if arrived - sent > SLOW_NS:
                    into.slow.append(sent)
                if call >= len(sources) or source[1] != sources[call]:
                    into.misrouted += 1

        return read

    def run(self, legs: list[list[int]], commands: Lines) -> None:
        n = self.calls
        poll = select.epoll()
        handlers: dict[int, Callable[[], None]] = {}
        phone_ports = [leg[0] for leg in legs]
        meeting_ports = [leg[1] for leg in legs]
        for rtp, rtcp in self.phones:
            handlers[rtp.fileno()] = self._reader(rtp, self.to_phone, phone_ports)
            handlers[rtcp.fileno()] = self._rtcp_reader(rtcp)
        for sock in self.meetings:
            handlers[sock.fileno()] = self._reader(sock, self.to_meeting, meeting_ports)
        for fd in handlers:
            poll.register(fd, select.EPOLLIN)
        poll.register(commands.fd, select.EPOLLIN)
        # Per call: where its phone and its meeting send from, and to.
        phone_send: list[_Send] = [self.phones[c // self.per_socket][0].sendto for c in range(n)]
        meeting_send: list[_Send] = [self.meetings[c // self.per_socket].sendto for c in range(n)]
        to_phone_leg = [(HOST, port) for port in phone_ports]
        to_meeting_leg = [(HOST, port) for port in meeting_ports]
        half = n // 2
        pack, time_ns, clock = _HEAD.pack, time.time_ns, time.perf_counter_ns
        start = clock() + 10_000_000
        j = 0  # the next packet of the schedule: call j % n, its packet j // n
        due = start
        while True:
            now = clock()
            if self.sending and due <= now:
                if self.marked:
                    self.lags.append(now - due)
                while due <= now:
                    number, call = divmod(j, n)
                    seq, stamp = number & 0xFFFF, (number * PAYLOAD) & 0xFFFFFFFF
                    mcall = call + half - n if call + half >= n else call + half
                    try:
                        phone_send[call](
                            pack(0x80, 0, seq, stamp, call + 1, time_ns(), call, number) + TAIL,
                            to_phone_leg[call],
                        )
                        self.sent_phone += self.marked
                    except BlockingIOError:
                        self.send_errors += 1
                    try:
                        meeting_send[mcall](
                            pack(0x80, 0, seq, stamp, mcall + 0x10000, time_ns(), mcall, number)
                            + TAIL,
                            to_meeting_leg[mcall],
                        )
                        self.sent_meeting += self.marked
                    except BlockingIOError:
                        self.send_errors += 1
                    j += 1
                    number, call = divmod(j, n)
                    due = start + number * PERIOD_NS + call * PERIOD_NS // n
            timeout = max(0.0, (due - clock()) / 1e9) if self.sending else 0.05
            for fd, _ in poll.poll(timeout):
                if fd == commands.fd:
                    for command in commands.ready():
                        if self._command(command):
                            return
                else:
                    handlers[fd]()

    def _rtcp_reader(self, sock: socket.socket) -> Callable[[], None]:
        def read() -> None:
            while True:
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    return
                self.rtcp += 1

        return read

    def _command(self, command: str) -> bool:
        """Handle one command from the script; True to end."""
        if command == "mark":
            self.window_start = time.time_ns()
            self.marked = True
            self.cpu[0], self.wall[0] = cpu_now(), time.perf_counter_ns()
        elif command == "stop":
            self.sending = False
            self.cpu[1], self.wall[1] = cpu_now(), time.perf_counter_ns()
        elif command == "report":
            lags = sorted(self.lags)
            say(
                {
                    "seconds": (self.wall[1] - self.wall[0]) / 1e9,
                    "cpu": self.cpu[1] - self.cpu[0],
                    "sent_phone": self.sent_phone,
                    "sent_meeting": self.sent_meeting,
                    "send_errors": self.send_errors,
                    "lag_p99_ms": lags[int(len(lags) * 0.99)] / 1e6 if lags else 0.0,
                    "lag_max_ms": lags[-1] / 1e6 if lags else 0.0,
                    "rtcp": self.rtcp,
                    "to_meeting": self.to_meeting.summary(),
                    "to_phone": self.to_phone.summary(),
                }
            )
        elif command == "quit":
            return True
        return False


def load_process(calls: int, per_socket: int) -> None:
    gc.disable()  # nothing here makes cycles; a collection would delay the schedule
    load = Load(calls, per_socket)
    say(load.hello())
    commands = Lines(sys.stdin.fileno())
    legs: list[list[int]] = json.loads(commands.line())["legs"]
    load.run(legs, commands)


# -- the script ------------------------------------------------------------------------------------
class Child:
    """A process of this script in another role, talked to in JSON lines over its stdin/stdout."""

    def __init__(self, core: str, *argv: str) -> None:
        self.process = subprocess.Popen(
            pinned(core, sys.executable, str(pathlib.Path(__file__).resolve()), *argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.lines = Lines(self.process.stdout.fileno())

    @property
    def pid(self) -> int:
        return self.process.pid

    def tell(self, message: str | dict[str, Any]) -> None:
        assert self.process.stdin is not None
        text = message if isinstance(message, str) else json.dumps(message)
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    def answer(self, timeout: float = 60) -> dict[str, Any]:
        try:
            found: dict[str, Any] = json.loads(self.lines.line(timeout))
        except (TimeoutError, EOFError) as exc:
            raise SystemExit(f"{self.process.args!r}: {exc}") from None
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.tell("quit")
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        _daemon.stop(self.process)


def core_ticks() -> dict[str, list[int]]:
    """Each core's /proc/stat counters: user nice system idle iowait irq softirq steal."""
    found = {}
    for line in pathlib.Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            found[name] = [int(v) for v in values[:8]]
    return found


def core_use(before: dict[str, list[int]], core: str) -> tuple[float, float]:
    """(busy, softirq) shares of ``core``'s time since ``before``."""
    after = core_ticks()
    delta = [a - b for a, b in zip(after[f"cpu{core}"], before[f"cpu{core}"], strict=True)]
    total = max(1, sum(delta))
    busy = total - delta[3] - delta[4] - delta[7]
    return busy / total, delta[6] / total


def process_times() -> dict[int, float]:
    """Every process's user+system CPU seconds so far (/proc/<pid>/stat)."""
    found = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                found[int(entry.name)] = _daemon.cpu_seconds([int(entry.name)])
    return found


def others_since(before: dict[int, float], ours: Sequence[int]) -> float:
    """CPU seconds processes other than ``ours`` used since ``before`` (a process that started
    meanwhile counts whole; one that ended meanwhile is missed)."""
    skip = set(ours)
    return sum(
        spent - before.get(pid, 0.0) for pid, spent in process_times().items() if pid not in skip
    )


def forks_so_far() -> int:
    """Processes and threads started on the machine since boot (/proc/stat ``processes``)."""
    for line in pathlib.Path("/proc/stat").read_text().splitlines():
        if line.startswith("processes "):
            return int(line.split()[1])
    return 0


def udp_errors() -> dict[str, int]:
    """The machine's UDP counters (/proc/net/snmp): receive buffer overflows among them."""
    rows = [
        line.split()
        for line in pathlib.Path("/proc/net/snmp").read_text().splitlines()
        if line.startswith("Udp:")
    ]
    return {name: int(value) for name, value in zip(rows[0][1:], rows[1][1:], strict=True)}


@dataclass
class Result:
    label: str
    calls: int
    seconds: float
    relay: dict[str, Any]
    """Deltas over the window: cpu, busy, counters (by name), gc collections per generation."""
    drained: dict[str, int]
    """The relay's counters from the window's start until the drain (loss accounting)."""
    load: dict[str, Any]
    steal: float
    core0: tuple[float, float]
    """The relay's core: (busy, softirq) shares of its time."""
    udp: dict[str, int]
    others: float
    """CPU seconds other processes used on the machine during the window (/proc/<pid>/stat)."""
    forks: int
    """Processes and threads started on the machine during the window: those that ended
    before its end are missing from ``others`` (a test suite's short runs)."""

    @property
    def disturbed(self) -> bool:
        return self.others / self.seconds > DISTURBED or self.forks > QUIET_FORKS

    @property
    def relayed(self) -> int:
        counters = self.relay["counters"]
        return int(counters["to_meeting_packets"] + counters["to_phone_packets"])

    @property
    def us_per_packet(self) -> float:
        """NaN when nothing was relayed."""
        if not self.relayed:
            return float("nan")
        return float(self.relay["cpu"]) / self.relayed * 1e6

    @property
    def rate(self) -> float:
        return self.relayed / self.seconds

    def loss(self, direction: str) -> int:
        sent = self.load["sent_phone" if direction == "to_meeting" else "sent_meeting"]
        return int(sent - self.load[direction]["received"])

    @property
    def nominal(self) -> float:
        """Packets/s the load should send (both directions)."""
        return self.calls * PACKETS_PER_SECOND * 2

    @property
    def load_keeps_up(self) -> bool:
        sent = (self.load["sent_phone"] + self.load["sent_meeting"]) / self.load["seconds"]
        return (
            sent >= 0.995 * self.nominal
            and self.load["lag_p99_ms"] <= 5.0
            and self.load["cpu"] / self.load["seconds"] < 0.95
            and not self.load["send_errors"]
        )


def measure(
    label: str, calls: int, args: argparse.Namespace, *, forwarder: bool, profile: str | None
) -> Result:
    load = Child(
        CLIENT_CORE,
        *("--role", "load", "--calls", str(calls), "--per-socket", str(args.per_socket)),
        *(("--realtime",) if args.realtime else ()),
    )
    relay: Child | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        hello = load.answer()
        relay = Child(
            SERVER_CORE,
            *("--role", "forwarder" if forwarder else "relay", "--port-min", str(args.port_min)),
            *("--stagger", str(args.stagger)),
            *(("--realtime",) if args.realtime else ()),
        )
        group = args.per_socket
        relay.tell(
            {
                "calls": [
                    [*hello["phones"][c // group], hello["meetings"][c // group]]
                    for c in range(calls)
                ]
            }
        )
        legs = relay.answer(120)["legs"]
        load.tell({"legs": legs})
        time.sleep(args.warmup)
        if profile:
            spy = subprocess.Popen(
                pinned(
                    CLIENT_CORE,
                    *(str(BIN / "py-spy"), "record", "-r", "100", "-f", "raw"),
                    *("-d", str(int(args.seconds) + 1), "-o", profile, "--pid", str(relay.pid)),
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
        ticks, cores, udp = _daemon.cpu_ticks(), core_ticks(), udp_errors()
        times, forks = process_times(), forks_so_far()
        load.tell("mark")
        relay.tell("mark")
        first = relay.answer()
        time.sleep(args.seconds)
        load.tell("stop")
        relay.tell("mark")
        last = relay.answer()
        steal = _daemon.steal_since(ticks)
        core0 = core_use(cores, SERVER_CORE)
        ours = [os.getpid(), load.pid, relay.pid] + ([spy.pid] if spy is not None else [])
        others = others_since(times, ours)  # taskset execs: the children's pids are theirs
        forks = forks_so_far() - forks
        time.sleep(DRAIN)
        relay.tell("mark")
        drained = relay.answer()
        load.tell("report")
        report = load.answer()
        after = udp_errors()
    finally:
        if spy is not None:
            spy.wait(args.seconds + 30)
        load.close()
        if relay is not None:
            relay.close()
    counters = {k: v - first["counters"][k] for k, v in last["counters"].items()}
    return Result(
        label=label,
        calls=calls,
        seconds=last["wall"] - first["wall"],
        relay={
            "cpu": last["cpu"] - first["cpu"],
            "busy": last["busy"] - first["busy"],
            "counters": counters,
            "gc": [b - a for a, b in zip(first["gc"], last["gc"], strict=True)],
            "housekeeping": last["housekeeping"][len(first["housekeeping"]) :],
        },
        drained={k: v - first["counters"][k] for k, v in drained["counters"].items()},
        load=report,
        steal=steal,
        core0=core0,
        udp={k: after[k] - udp[k] for k in after},
        others=others,
        forks=forks,
    )


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    rows = []
    for r in results:
        rows.append(
            [
                r.label,
                str(r.calls),
                f"{r.rate:,.0f}",
                f"{r.relay['cpu'] / r.seconds * 100:.1f} %",
                f"{r.core0[0] * 100:.0f} % ({r.core0[1] * 100:.0f} %)",
                f"{r.us_per_packet:.1f}",
                f"{r.relay['busy'] / max(1, r.relayed) * 1e6:.1f}" if r.relay["busy"] else "-",
                f"{(r.load['sent_phone'] + r.load['sent_meeting']) / r.load['seconds']:,.0f}"
                f" ({r.load['cpu'] / r.load['seconds'] * 100:.0f} %)"
                + ("" if r.load_keeps_up else " BEHIND"),
                f"{r.steal:.1f} %",
                f"{r.others / r.seconds * 100:.0f} % ({r.forks} started)",
            ]
        )
    print(
        table(
            [
                "relay",
                "calls",
                "relayed pkt/s",
                "relay CPU",
                "core 0 busy (softirq)",
                "CPU µs/pkt",
                "in handlers µs/pkt",
                "load sent pkt/s (its CPU)",
                "steal",
                "others",
            ],
            rows,
        )
    )
    print()
    rows = []
    for r in results:
        row = [r.label, str(r.calls)]
        for direction in ("to_meeting", "to_phone"):
            d = r.load[direction]
            row.append(f"{r.loss(direction)}")
            row.append(f"{_ms(d['p50_us'])} / {_ms(d['p99_us'])} / {_ms(d['max_us'])}")
        rows.append(row)
    print(
        table(
            [
                "relay",
                "calls",
                "lost phone→meeting",
                "phone→meeting p50 / p99 / max ms",
                "lost meeting→phone",
                "meeting→phone p50 / p99 / max ms",
            ],
            rows,
        )
    )
    print(
        f"\n{args.seconds:g} s measured per row after {args.warmup:g} s of warm-up; 20 ms PCMU"
        f" both ways, {args.per_socket} calls per load socket, the calls opened over"
        f" {args.stagger:g} s; relay on core {SERVER_CORE},"
        f" load on core {CLIENT_CORE}"
        + (", both SCHED_FIFO" if args.realtime else ", both at nice -10")
        + ". CPU µs/pkt: the relay process's user+system CPU over the"
        " window / packets it sent (both directions); in handlers: Relay.busy, the time inside"
        " its datagram callbacks (the rest is the event loop: epoll, recvfrom, dispatch). Core 0"
        " busy includes softirq time the kernel may not charge to the process. Others: CPU"
        " other processes on the machine used during the window, in % of a core (those that"
        " started and ended within it are missed: how many processes started is shown)."
    )
    for r in results:
        notes = _notes(r)
        if notes:
            print(f"  {r.label} {r.calls} calls: " + "; ".join(notes))
    targets(results)


def _notes(r: Result) -> list[str]:
    notes = []
    drops = {
        name: value
        for name, value in r.drained.items()
        if name in ("muted", "not_rtp", "too_big", "stranger", "payload_type", "paused") and value
    }
    if drops:
        notes.append(f"relay dropped {drops}")
    for direction in ("to_meeting", "to_phone"):
        d = r.load[direction]
        if d["mangled"] or d["misrouted"] or d["keepalives"]:
            notes.append(
                f"{direction}: {d['mangled']} mangled, {d['misrouted']} misrouted,"
                f" {d['keepalives']} keepalives"
            )
    if r.load["send_errors"]:
        notes.append(f"load: {r.load['send_errors']} sends failed (EAGAIN)")
    if r.udp.get("RcvbufErrors") or r.udp.get("InErrors"):
        notes.append(
            f"UDP receive buffer overflows on the machine: {r.udp.get('RcvbufErrors', 0)}"
            " (any process's)"
        )
    for direction, name in (("to_meeting", "phone→meeting"), ("to_phone", "meeting→phone")):
        d = r.load[direction]
        if d["slow"]:
            notes.append(
                f"{name}: {d['slow']} packets over {TARGET_P99_MS:g} ms"
                f" ({d['slow'] / max(1, d['received']) * 100:.2f} %) in {d['bursts']} bursts"
                f" (longest {d['longest_burst_ms']:.0f} ms, one every {d['burst_every_s']:.1f} s)"
            )
    runs = r.relay["housekeeping"]
    if runs:
        notes.append(
            f"relay housekeeping ran {len(runs)}x, {max(runs) * 1000:.1f} ms the longest,"
            f" {sum(runs) / len(runs) * 1000:.1f} ms on average"
        )
    gcs = r.relay["gc"]
    if any(gcs):
        notes.append(f"relay collections gen0/1/2: {gcs[0]}/{gcs[1]}/{gcs[2]}")
    notes.append(
        f"load schedule lag p99 {r.load['lag_p99_ms']:.2f} ms, max {r.load['lag_max_ms']:.2f} ms"
    )
    if not r.load_keeps_up:
        notes.append(
            "THE LOAD GENERATOR DID NOT KEEP UP (rate, lag or its core saturated): these figures"
            " are limited by it, not by the relay"
        )
    if r.disturbed:
        notes.append(
            f"WARNING: other processes used {r.others / r.seconds * 100:.0f} % of a core during"
            f" the window and {r.forks} started: the figures are skewed"
        )
    if r.steal > STEAL_WARNING:
        notes.append(f"WARNING: {r.steal:.0f} % steal: figures skewed, re-run on a quiet host")
    return notes


def targets(results: list[Result]) -> None:
    measured = [r for r in results if r.label == "relay"]
    at = next((r for r in measured if r.calls == TARGET_CALLS), None)
    print(
        f"\nTargets at {TARGET_CALLS} calls ({TARGET_CALLS * PACKETS_PER_SECOND * 2:,} relayed"
        " packets/s) on one core:"
    )
    if at is None:
        print(f"  not measured: add {TARGET_CALLS} to --calls")
        return
    p99 = max(at.load["to_meeting"]["p99_us"], at.load["to_phone"]["p99_us"]) / 1000
    lost = at.loss("to_meeting") + at.loss("to_phone")
    checks = [
        (
            f"relayed packets/s >= {at.nominal * 0.995:,.0f}",
            f"{at.rate:,.0f}",
            at.rate >= 0.995 * at.nominal,
        ),
        (
            f"CPU per relayed packet <= {TARGET_US:g} µs",
            f"{at.us_per_packet:.1f} µs",
            at.us_per_packet <= TARGET_US,
        ),
        ("zero loss", f"{lost} lost", lost == 0),
        (f"p99 added latency < {TARGET_P99_MS:g} ms", f"{p99:.2f} ms", p99 < TARGET_P99_MS),
    ]
    for what, value, ok in checks:
        print(f"  {what:<40} {value:>14}  {'met' if ok else 'NOT MET'}")
    ref = next((r for r in results if r.label != "relay" and r.calls == TARGET_CALLS), None)
    if ref is not None:
        print(
            f"  reference: the minimal uvloop forwarder here {ref.us_per_packet:.1f} µs/packet"
            f" (the issue's, on another machine, {REFERENCE_US:g} µs);"
            f" the relay costs {at.us_per_packet / max(ref.us_per_packet, 1e-9):.2f}x it"
        )
    if not at.load_keeps_up:
        print("  the load generator did not keep up at this size: the figures above are its own")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="100,250,500", help="comma-separated call counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per row")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--per-socket", type=int, default=100, help="calls per load socket")
    parser.add_argument("--port-min", type=int, default=24000, help="the relay's port range")
    parser.add_argument(
        "--stagger",
        type=float,
        default=5.0,
        help="seconds over which the calls start, in 5 groups (0: all at once)",
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the forwarder row")
    parser.add_argument("--profile", metavar="FILE", help="py-spy raw stacks of an extra run")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run the relay and the load SCHED_FIFO (root): the machine's other processes get"
        " only what they leave, as if each had its core alone",
    )
    parser.add_argument("--retries", type=int, default=2, help="runs again when disturbed")
    parser.add_argument("--quiet-wait", type=float, default=180, help="seconds to wait for idle")
    parser.add_argument("--role", choices=("main", "relay", "forwarder", "load"), default="main")
    args = parser.parse_args()
    if args.role != "main":
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the script ends it (its terminal's ^C)
        with contextlib.suppress(OSError):
            if args.realtime:  # preempts everything else on its core the moment it has work
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
            else:
                os.nice(-10)  # as bench/relay.py: other processes on the machine wait (root only)
    if args.role in ("relay", "forwarder"):
        uvloop.run(relay_process(args.role == "forwarder", args.port_min, args.stagger))
        return
    if args.role == "load":
        load_process(int(args.calls), args.per_socket)
        return
    sizes = [int(n) for n in args.calls.split(",")]
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})  # off the relay's core
    _daemon.quiet_machine(args.quiet_wait)
    print(machine(), flush=True)
    results = []
    for calls in sizes:
        results.append(steady("relay", calls, args))
    if not args.no_reference:
        calls = TARGET_CALLS if TARGET_CALLS in sizes else max(sizes)
        results.append(steady("forwarder", calls, args))
    report(results, args)
    if args.profile:
        if not (BIN / "py-spy").exists():
            print(f"\n--profile: {BIN / 'py-spy'} is missing (.venv/bin/pip install py-spy)")
            return
        profiled = measure("relay", max(sizes), args, forwarder=False, profile=args.profile)
        largest = next(r for r in results if r.label == "relay" and r.calls == max(sizes))
        print(
            f"\npy-spy raw stacks of an extra run at {max(sizes)} calls (not a measured row:"
            f" py-spy shares core {CLIENT_CORE} with the load): {args.profile}; that run:"
            f" {profiled.us_per_packet:.1f} µs/packet. Read it with:"
            f" .venv/bin/python bench/hotspots.py {args.profile}"
            f" --per-call-us {largest.us_per_packet:.1f}"
        )


def steady(label: str, calls: int, args: argparse.Namespace) -> Result:
    """One row; measured again (up to ``--retries`` times, after waiting for a quiet machine)
    while other processes took more than DISTURBED of a core meanwhile. The least disturbed."""
    tries: list[Result] = []
    for attempt in range(args.retries + 1):
        if attempt:
            print(
                f"  other processes used {tries[-1].others / tries[-1].seconds * 100:.0f} % of a"
                f" core during that run, {tries[-1].forks} started: measuring it again",
                flush=True,
            )
            _daemon.quiet_machine(args.quiet_wait)
        tries.append(measure(label, calls, args, forwarder=label == "forwarder", profile=None))
        _progress(tries[-1])
        if not tries[-1].disturbed:
            break
    return min(tries, key=lambda r: (r.disturbed, r.others / r.seconds))


def _progress(r: Result) -> None:
    print(
        f"  {r.label} {r.calls} calls: {r.rate:,.0f} relayed/s, {r.us_per_packet:.1f} µs/packet,"
        f" lost {r.loss('to_meeting')}/{r.loss('to_phone')}, p99"
        f" {_ms(r.load['to_meeting']['p99_us'])}/{_ms(r.load['to_phone']['p99_us'])} ms,"
        f" steal {r.steal:.1f} %, other processes {r.others / r.seconds * 100:.0f} % of a core"
        f" ({r.forks} started)",
        flush=True,
    )


if __name__ == "__main__":
    main()
