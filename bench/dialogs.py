"""Dialogs: hold 10,000 then 50,000 established calls and read the daemon's resident memory; then
1,000 relayed calls, and the RSS and file descriptors each relayed call costs.

How: sipp (core 1) places calls that stay up (INVITE, 200, ACK, then a 10-minute pause and no
BYE) into one meeting of the embedded conference server; the daemon runs alone on core 0. Calls
are placed in blocks of at most ``--block`` by one sipp each (every sipp run is bounded: a block
takes ``block / rate`` seconds), and each sipp stays alive holding its calls until the end.
Memory is VmRSS of the daemon process, which also holds the embedded server's attendee for each
call. It is read twice at each count: as soon as the daemon has every call, and once the INVITE
transactions have ended (RFC 6026 keeps them 64*T1 = 32 s after the 200), which is what the
dialogs themselves hold. Bytes per dialog = (RSS - RSS before the first call) / calls. That daemon
runs with ``[media] relay = false`` (signalling only, as the call-rate benchmark).

The relayed phase starts a fresh daemon with ``[media] relay = true`` and a range of 4 ports a
call, and holds calls the same way (one sipp, ``--relayed-rate`` calls/s). It runs twice: with the
embedded server's mixer off (``[media_server] enabled = false``: each call has the relay's phone leg
only, no meeting endpoint; ``--relayed 1000`` calls, 0 skips it) and on (each call also has a
meeting leg to a participant in the one meeting's Janus AudioBridge room; ``--relayed-mixer 300``
calls). sipp's phones send no RTP, but with the mixer on Janus sends each participant a 20 ms frame
once it has heard the relay's keepalive (one a second a call), and the relay forwards every frame to
the phone: 100 datagrams a second a call through the relay, and Janus (the daemon's child,
inheriting its core) mixing, both on core 0: 0.56 of it at 300 calls on this machine, saturated
at 640 of 1,000 (calls then set up at 2 a second), so 1,000 would measure an overloaded core.
Before the first call and once every call is held and its INVITE transaction has ended, it reads
the daemon's VmRSS and open file descriptors (/proc/PID/fd), and Janus's; per relayed call = (held -
before) / calls holding a port block. With the calls held it also samples 10 s of CPU (daemon and
Janus, in cores) and of the relay's packet counters.

Run: .venv/bin/python bench/dialogs.py [--rate 500] [--counts 10000,50000] [--block 10000]
     [--relayed 1000] [--relayed-mixer 300] [--relayed-rate 200] [--mixer off,on]
(``--tracemalloc FILE`` traces the daemon's allocations: slower, for finding what holds memory.)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import _daemon
from _daemon import (
    Target,
    cpu_seconds,
    cpu_ticks,
    descendant,
    load_average,
    machine,
    open_fds,
    rss_bytes,
    sipp_args,
    steal_since,
    table,
)

from bridge.config.media import PORTS_PER_CALL

HOLD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="hold">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Held [call_number]" <sip:held@[local_ip]:[local_port]>;tag=[pid]h[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:held@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=held 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Held [call_number]" <sip:held@[local_ip]:[local_port]>;tag=[pid]h[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:held@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="600000"/>
</scenario>
"""


def dialogs(target: Target) -> float:
    return target.metric("spaces_bridge_dialogs_active")


def wait_for(target: Target, count: int, timeout: float) -> float:
    """Seconds until the daemon holds ``count`` dialogs (raises after ``timeout``)."""
    started = time.monotonic()
    while (held := dialogs(target)) < count:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"only {held:.0f} of {count} calls established after {timeout} s")
        time.sleep(0.5)
    return time.monotonic() - started


def hold(work: pathlib.Path, target: Target, calls: int, rate: int) -> subprocess.Popen[bytes]:
    """One sipp placing ``calls`` calls of the HOLD scenario, kept up until it is stopped."""
    return subprocess.Popen(
        sipp_args(
            target.port,
            rate=rate,
            calls=calls,
            scenario=("-sf", str(work / "hold.xml")),
            timeout=900,
        ),
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def settle(target: Target, timeout: float = 45) -> bool:
    """Wait until no transaction is open (the INVITEs' 32 s Accepted state has passed)."""
    deadline = time.monotonic() + timeout
    while target.metric("spaces_bridge_transactions_active") > 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def held_calls(args: argparse.Namespace) -> None:
    """10,000 then 50,000 calls held without the relay: the daemon's RSS."""
    counts = [int(c) for c in args.counts.split(",")]
    rows = []
    phones: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dialogs-") as name:
        work = pathlib.Path(name)
        (work / "hold.xml").write_text(HOLD)
        with _daemon.daemon(work, tracemalloc_to=args.tracemalloc) as target:
            try:
                time.sleep(2)
                baseline = rss_bytes(target.pid)
                print(f"  RSS before the first call: {baseline / 2**20:.1f} MiB", flush=True)
                placed = 0
                for count in counts:
                    ticks = cpu_ticks()
                    while placed < count:
                        block = min(args.block, count - placed)
                        phones.append(hold(work, target, block, args.rate))
                        placed += block
                        took = wait_for(target, placed, timeout=block / args.rate * 2 + 20)
                        print(
                            f"  {placed:>6} calls held ({block} placed in {took:.1f} s)", flush=True
                        )
                    fresh = rss_bytes(target.pid)
                    settled = settle(target)
                    held = rss_bytes(target.pid)
                    steal, load = steal_since(ticks), load_average()
                    if args.tracemalloc:
                        os.kill(target.pid, signal.SIGUSR1)
                        time.sleep(5)  # the snapshot takes a while with every call up
                    print(
                        f"  {count:>6} calls: RSS {fresh / 2**20:.1f} MiB at once, "
                        f"{held / 2**20:.1f} MiB after the transactions "
                        f"{'ended' if settled else 'DID NOT END in 45 s'}",
                        flush=True,
                    )
                    rows.append(
                        [
                            f"{count:,}",
                            f"{dialogs(target):,.0f}",
                            f"{fresh / 2**20:.1f} MiB",
                            f"{held / 2**20:.1f} MiB",
                            f"{(held - baseline) / count:,.0f} B",
                            f"{steal:.1f} % / {load}",
                        ]
                    )
            finally:
                for phone in phones:
                    _daemon.stop(phone, timeout=5)
    print()
    print(
        table(
            [
                "calls held",
                "dialogs (metric)",
                "RSS, calls just up",
                "RSS, transactions ended",
                "bytes per dialog",
                "steal / load avg",
            ],
            rows,
        )
    )
    print(
        f"\nRSS before the first call {baseline / 2**20:.1f} MiB; the daemon's RSS includes the "
        "embedded conference server (one attendee per call); [media] relay = false. Steal over "
        "placing and settling the calls; load average (1/5 min) at the reading",
        flush=True,
    )


@dataclass
class Process:
    """RSS and open file descriptors of one process, before the first call and with the calls held."""

    rss: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)

    def read(self, pid: int | None) -> None:
        if pid is not None:
            self.rss.append(rss_bytes(pid))
            self.fds.append(open_fds(pid))

    def per_call(self, calls: int) -> tuple[str, str]:
        if len(self.rss) < 2 or calls == 0:
            return "-", "-"
        return (
            f"{(self.rss[1] - self.rss[0]) / calls / 1024:.1f} KiB",
            f"{(self.fds[1] - self.fds[0]) / calls:.2f}",
        )

    def span(self) -> tuple[str, str]:
        if len(self.rss) < 2:
            return "-", "-"
        return (
            f"{self.rss[0] / 2**20:.1f} -> {self.rss[1] / 2**20:.1f} MiB",
            f"{self.fds[0]} -> {self.fds[1]}",
        )


def packets(target: Target) -> dict[tuple[str, str], float]:
    """The relay's RTP datagrams so far, by (leg, direction)."""
    found = {}
    for match in re.finditer(
        r"^spaces_bridge_media_packets(?:_total)?{([^}]*)} (\S+)$", target.metrics(), re.M
    ):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match[1]))
        found[labels.get("leg", ""), labels.get("direction", "")] = float(match[2])
    return found


def relayed(work: pathlib.Path, calls: int, rate: int, mixer: bool) -> list[list[str]]:
    """``calls`` relayed calls held by one daemon: its RSS and file descriptors per call, and
    Janus's when the mixer runs. Two rows (daemon, Janus), or none when the mixer was asked for
    and did not start."""
    label = "mixer on" if mixer else "mixer off"
    extra = "" if mixer else "[media_server]\nenabled = false\n"
    ports = PORTS_PER_CALL * calls + 400  # some blocks may be taken by other sockets: skipped
    daemon, janus = Process(), Process()
    phone: subprocess.Popen[bytes] | None = None
    with _daemon.daemon(work, relay=True, media_ports=ports, extra=extra) as target:
        try:
            time.sleep(3)
            janus_pid = descendant(target.pid, "janus") if mixer else None
            if mixer and janus_pid is None:
                print(f"  {label}: no janus process under the daemon (not installed?): skipped")
                return []
            daemon.read(target.pid)
            janus.read(janus_pid)
            ticks = cpu_ticks()
            phone = hold(work, target, calls, rate)
            try:
                took = wait_for(target, calls, timeout=calls / rate * 2 + 30)
            except SystemExit as failed:
                print(f"  {label}: {failed}", flush=True)
                took = float("nan")
            settled = settle(target)
            calls = int(dialogs(target))
            relaying = target.metric("spaces_bridge_media_calls_active")
            print(
                f"  {label}: {calls} relayed calls held ({took:.1f} s to place), "
                f"{relaying:.0f} holding a port block, transactions "
                f"{'ended' if settled else 'DID NOT END in 45 s'}",
                flush=True,
            )
            pids = [target.pid, *([janus_pid] if janus_pid else [])]
            cpu, counted, began = cpu_seconds(pids), packets(target), time.monotonic()
            daemon_cpu = cpu_seconds([target.pid])
            time.sleep(10)
            elapsed = time.monotonic() - began
            busy = (cpu_seconds(pids) - cpu) / elapsed
            own = (cpu_seconds([target.pid]) - daemon_cpu) / elapsed
            rates = {k: (v - counted.get(k, 0)) / elapsed for k, v in packets(target).items()}
            daemon.read(target.pid)
            janus.read(janus_pid)
            steal, load = steal_since(ticks), load_average()
            assert target.log is not None
            errors = target.log.read_text().count("[ERR]")
        finally:
            if phone is not None:
                _daemon.stop(phone, timeout=5)
    traffic = (
        f"relay packets/s: from the mixer {rates.get(('meeting', 'in'), 0):,.0f}, to the phones "
        f"{rates.get(('phone', 'out'), 0):,.0f}, to the mixer {rates.get(('meeting', 'out'), 0):,.0f}"
    )
    print(
        f"  {label}: core 0 busy {busy:.2f} (daemon {own:.2f}, Janus {busy - own:.2f}); {traffic}; "
        f"Janus [ERR] lines in the log: {errors}; steal {steal:.1f} %, load average {load}",
        flush=True,
    )
    held, blocks = f"{calls:,} / {relaying:,.0f}", int(relaying)
    rows = [[label, "daemon", held, *daemon.span(), *daemon.per_call(blocks)]]
    if mixer:
        rows.append([label, "Janus", held, *janus.span(), *janus.per_call(blocks)])
    for row in rows:
        row += [f"{busy:.2f}" if row[1] == "daemon" else "", f"{steal:.1f} % / {load}"]
    return rows


def relayed_calls(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-relayed-") as name:
        work = pathlib.Path(name)
        (work / "hold.xml").write_text(HOLD)
        for mixer in args.mixer.split(","):
            calls = args.relayed_mixer if mixer == "on" else args.relayed
            if calls:
                _daemon.quiet_machine()
                rows += relayed(work, calls, args.relayed_rate, mixer == "on")
    if not rows:
        return
    print()
    print(
        table(
            [
                "relay on",
                "process",
                "calls held / relayed",
                "RSS before -> held",
                "fds before -> held",
                "RSS per call",
                "fds per call",
                "core 0 busy, held",
                "steal / load avg",
            ],
            rows,
        )
    )
    print(
        "\nRSS and fds read once every call's INVITE transaction ended; per call = (held - before) "
        "/ calls holding a relay port block. core 0 busy: CPU of the daemon and Janus (same "
        "core), in cores, over 10 s with the calls held. Steal over the whole phase; load average "
        "(1/5 min) at the reading",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=500, help="calls placed per second")
    parser.add_argument("--counts", default="10000,50000", help="calls held at each reading")
    parser.add_argument("--block", type=int, default=10000, help="calls per sipp process")
    parser.add_argument(
        "--relayed", type=int, default=1000, help="relayed calls held in the relay phase (0: none)"
    )
    parser.add_argument(
        "--relayed-rate", type=int, default=200, help="calls placed per second, relay phase"
    )
    parser.add_argument(
        "--relayed-mixer",
        type=int,
        default=300,
        help="relayed calls held with the mixer on (its frames, 50 a second a call, load the relay "
        "and Janus on core 0, which 1,000 overload)",
    )
    parser.add_argument(
        "--mixer", default="off,on", help="the relay phase's runs: the embedded mixer off, on"
    )
    parser.add_argument(
        "--tracemalloc",
        metavar="FILE",
        type=pathlib.Path,
        help="experiment: trace the daemon's allocations, top sites to FILE at each count",
    )
    args = parser.parse_args()
    _daemon.quiet_machine()
    print(machine(), flush=True)
    if args.counts:
        held_calls(args)
    if args.relayed:
        print()
        relayed_calls(args)


if __name__ == "__main__":
    main()
