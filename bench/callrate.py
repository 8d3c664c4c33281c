"""Call rate: sipp basic calls (INVITE, 100, 200, ACK, BYE, 200) at rising rates against the
daemon with its embedded conference server, then the same ramp against Kamailio answering
statelessly (``sl_send_reply``), in the same run.

How: the target runs alone on core 0 (``taskset -c 0``), sipp on core 1 with
``-buff_size 4194304``. Each step places ``rate * --seconds`` calls from one sipp; a step passes
when every call succeeded and sipp finished within 1.5x the step time plus 2 s (a target that
answers late slows sipp down rather than failing calls). The ramp stops at the first failed step.
CPU time is utime + stime from /proc/PID/stat of the target's processes over each step. At 1,000
calls/s a fresh measurement also waits until the daemon's transactions have all ended (Timer J
keeps BYE transactions 32 s), so that its CPU per call includes every timer the calls cause; the
idle CPU over that wait is measured first and subtracted.

Run: .venv/bin/python bench/callrate.py [--seconds 5] [--skip-kamailio] [--profile FILE]
(``--profile`` adds a step at ``--profile-rate`` recorded by py-spy; see bench/hotspots.py.)
Writes the highest passing rate to $TMPDIR/spaces-bridge-bench/callrate.json for bench/relay.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import _daemon
from _daemon import BIN, CLIENT_CORE, Target, cpu_seconds, machine, sipp, table

OURS = (250, 500, 600, 700, 800, 900, 1000, 1250, 1500, 2000, 2500, 3000)
KAMAILIO = (1000, 2000, 4000, 8000, 12000, 16000)
REFERENCE = 1000
STEAL_WARNING = 3.0  # percent


@dataclass
class Step:
    rate: int
    calls: int
    lost: int
    seconds: float
    cpu: float
    retransmissions: int
    steal: float
    """Percent of the machine's CPU time the hypervisor took over the step."""

    @property
    def passed(self) -> bool:
        """Every call succeeded, on time: sipp retransmits after 500 ms without an answer, so
        retransmissions on loopback (beyond 1 per 100 calls) mean the target fell behind."""
        return (
            self.lost == 0
            and self.seconds <= self.calls / self.rate + 2
            and self.retransmissions <= self.calls // 100
        )

    @property
    def us_per_call(self) -> float:
        return self.cpu / self.calls * 1e6


def step(target: Target, rate: int, seconds: float) -> Step:
    calls = int(rate * seconds)
    before, ticks = cpu_seconds(target.pids()), _daemon.cpu_ticks()
    run = sipp(target.port, rate=rate, calls=calls, timeout=min(20, 1.5 * seconds + 5))
    time.sleep(1.0)  # the last BYEs' answers belong to this step
    spent = cpu_seconds(target.pids()) - before
    stolen = _daemon.steal_since(ticks)
    result = Step(rate, calls, run.lost, run.seconds, spent, run.retransmissions, stolen)
    print(
        f"  {target.name:<13} {rate:>6}/s: {calls} calls in {run.seconds:.1f} s, "
        f"{run.lost} lost, {run.retransmissions} retransmissions, "
        f"{result.us_per_call:.0f} us CPU per call, steal {stolen:.0f} % "
        f"-> {'ok' if result.passed else 'FAILED'}",
        flush=True,
    )
    return result


def ramp(target: Target, rates: tuple[int, ...], seconds: float) -> list[Step]:
    steps = []
    for rate in rates:
        steps.append(step(target, rate, seconds))
        if not steps[-1].passed:
            break
        time.sleep(1.0)
    return steps


def drained_cost(target: Target, seconds: float) -> tuple[float, float]:
    """CPU per call (us) at REFERENCE calls/s until every transaction has ended, idle subtracted;
    and the idle CPU share it subtracted."""
    pids = target.pids()
    idle_start, idle_cpu = time.monotonic(), cpu_seconds(pids)
    time.sleep(3)
    idle = (cpu_seconds(pids) - idle_cpu) / (time.monotonic() - idle_start)
    calls = int(REFERENCE * seconds)
    started, before = time.monotonic(), cpu_seconds(pids)
    run = sipp(target.port, rate=REFERENCE, calls=calls, timeout=min(20, 1.5 * seconds + 5))
    deadline = time.monotonic() + 45
    while target.metric("spaces_bridge_transactions_active") > 0:
        if time.monotonic() > deadline:
            print("  transactions still open after 45 s; counting what was spent so far")
            break
        time.sleep(0.5)
    spent = cpu_seconds(pids) - before - idle * (time.monotonic() - started)
    print(
        f"  {target.name:<13} {REFERENCE:>6}/s until drained: {calls} calls, {run.lost} lost, "
        f"{spent / calls * 1e6:.0f} us CPU per call (idle {idle * 100:.1f} % subtracted)",
        flush=True,
    )
    return spent / calls * 1e6, idle


@contextlib.contextmanager
def profiled(target: Target, path: str | None, seconds: float) -> Iterator[None]:
    """py-spy (on the client core) over one step, raw stacks to ``path``. py-spy pauses the daemon
    for each sample (its --nonblocking mode misreads frames and blames idle time on stale ones),
    so the profiled step is not one of the measured ones."""
    if path is None:
        yield
        return
    spy = subprocess.Popen(
        _daemon.pinned(
            CLIENT_CORE,
            *(str(BIN / "py-spy"), "record", "-r", "100", "-f", "raw"),
            *("-d", str(int(seconds) + 2), "-o", path, "--pid", str(target.pid)),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.wait(30)


def highest(steps: list[Step]) -> int:
    return max((s.rate for s in steps if s.passed), default=0)


def at(steps: list[Step], rate: int) -> Step | None:
    return next((s for s in steps if s.rate == rate), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument("--skip-kamailio", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="py-spy raw stacks of an extra step")
    parser.add_argument("--profile-rate", type=int, default=700, help="calls/s of that step")
    args = parser.parse_args()
    _daemon.quiet_machine()
    print(machine(with_kamailio=not args.skip_kamailio), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-callrate-") as name:
        work = pathlib.Path(name)
        with _daemon.daemon(work) as target:
            drained, idle = drained_cost(target, args.seconds)
            ours = ramp(target, OURS, args.seconds)
            if args.profile:
                with profiled(target, args.profile, args.seconds):
                    step(target, args.profile_rate, args.seconds)
                print(f"  py-spy raw stacks: {args.profile}")
        kam: list[Step] = []
        if not args.skip_kamailio:
            with _daemon.kamailio(work) as target:
                kam = ramp(target, KAMAILIO, args.seconds)
    best = highest(ours)
    _daemon.RESULTS.mkdir(exist_ok=True)
    (_daemon.RESULTS / "callrate.json").write_text(json.dumps({"max_rate": best}))
    ours_ref, kam_ref = at(ours, REFERENCE), at(kam, REFERENCE)
    rows = [
        ["spaces-bridge (embedded server)", f"{best:,}", _us(ours_ref), f"{drained:.0f} us"],
    ]
    if kam:
        ceiling = " (sipp's ceiling)" if all(s.passed for s in kam) else ""
        rows.append(
            [
                "Kamailio sl_send_reply",
                f"{highest(kam):,}{ceiling}",
                _us(kam_ref),
                "- (stateless: no timers)",
            ]
        )
        if kam_ref:
            rows.append(
                [
                    "ratio ours / Kamailio",
                    "",
                    f"{ours_ref.us_per_call / kam_ref.us_per_call:.1f}x" if ours_ref else "-",
                    f"{drained / kam_ref.us_per_call:.1f}x",
                ]
            )
    print()
    print(
        table(
            [
                "target (core 0; sipp on core 1)",
                "max calls/s, 0 failed",
                f"CPU/call, {REFERENCE:,}/s step",
                f"CPU/call, {REFERENCE:,}/s until drained",
            ],
            rows,
        )
    )
    print(f"\nsteps of {args.seconds:g} s; daemon idle CPU {idle * 100:.1f} % of a core")
    stolen = [s.steal for s in ours + kam]
    if stolen and max(stolen) > STEAL_WARNING:
        print(
            f"WARNING: the hypervisor took up to {max(stolen):.0f} % of this machine's CPU time"
            " during a step (steal): rates and CPU per call are skewed, re-run on a quiet host"
        )


def _us(s: Step | None) -> str:
    if s is None:
        return "not reached (ramp stopped)"
    return f"{s.us_per_call:.0f} us" + ("" if s.passed else " (step failed)")


if __name__ == "__main__":
    main()
