"""Dialogs: hold 10,000 then 50,000 established calls and read the daemon's resident memory.

How: sipp (core 1) places calls that stay up (INVITE, 200, ACK, then a 10-minute pause and no
BYE) into one meeting of the embedded conference server; the daemon runs alone on core 0. Calls
are placed in blocks of at most ``--block`` by one sipp each (every sipp run is bounded: a block
takes ``block / rate`` seconds), and each sipp stays alive holding its calls until the end.
Memory is VmRSS of the daemon process, which also holds the embedded server's attendee for each
call. It is read twice at each count: as soon as the daemon has every call, and once the INVITE
transactions have ended (RFC 6026 keeps them 64*T1 = 32 s after the 200), which is what the
dialogs themselves hold. Bytes per dialog = (RSS - RSS before the first call) / calls.

Run: .venv/bin/python bench/dialogs.py [--rate 500] [--counts 10000,50000] [--block 10000]
(``--tracemalloc FILE`` traces the daemon's allocations: slower, for finding what holds memory.)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import subprocess
import tempfile
import time

import _daemon
from _daemon import Target, machine, rss_bytes, sipp_args, table

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


def settle(target: Target, timeout: float = 45) -> bool:
    """Wait until no transaction is open (the INVITEs' 32 s Accepted state has passed)."""
    deadline = time.monotonic() + timeout
    while target.metric("spaces_bridge_transactions_active") > 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=500, help="calls placed per second")
    parser.add_argument("--counts", default="10000,50000", help="calls held at each reading")
    parser.add_argument("--block", type=int, default=10000, help="calls per sipp process")
    parser.add_argument(
        "--tracemalloc",
        metavar="FILE",
        type=pathlib.Path,
        help="experiment: trace the daemon's allocations, top sites to FILE at each count",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    _daemon.quiet_machine()
    print(machine(), flush=True)
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
                    while placed < count:
                        block = min(args.block, count - placed)
                        phones.append(
                            subprocess.Popen(
                                sipp_args(
                                    target.port,
                                    rate=args.rate,
                                    calls=block,
                                    scenario=("-sf", str(work / "hold.xml")),
                                    timeout=900,
                                ),
                                cwd=work,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                            )
                        )
                        placed += block
                        took = wait_for(target, placed, timeout=block / args.rate * 2 + 20)
                        print(
                            f"  {placed:>6} calls held ({block} placed in {took:.1f} s)", flush=True
                        )
                    fresh = rss_bytes(target.pid)
                    settled = settle(target)
                    held = rss_bytes(target.pid)
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
            ],
            rows,
        )
    )
    print(
        f"\nRSS before the first call {baseline / 2**20:.1f} MiB; the daemon's RSS includes the "
        "embedded conference server (one attendee per call)"
    )


if __name__ == "__main__":
    main()
