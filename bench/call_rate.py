"""Call rate: sipp basic calls (INVITE, 100, 200, ACK, BYE, 200) at rising rates against the daemon
with its embedded conference server, then against Kamailio answering statelessly, in the same run.

For each target it reports the highest rate that completed every call, and the CPU time the target
spent per call at each rate (utime + stime of its processes over the step, from /proc), so the
table shows ours/Kamailio per call. The target runs on core 0, sipp on core 1. Each step places
``rate * 5`` calls; the ramp stops at the first step with a failed call.

Run: .venv/bin/python bench/call_rate.py [--seconds 5] [--skip-kamailio]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from sipbench import Target, cpu_seconds, daemon, kamailio, kamailio_version, machine, sipp, table

OURS = (250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000)
KAMAILIO = (250, 500, 1000, 2000, 4000, 6000, 8000, 10000, 12000)
REFERENCE_RATE = 1000


@dataclass
class Step:
    rate: int
    calls: int
    failed: int
    cpu_per_call: float
    achieved: float
    """Calls per second sipp actually completed: below the asked rate, the target kept up only by
    slowing sipp down (it answered late), which counts as a failed step."""

    @property
    def kept_up(self) -> bool:
        return not self.failed and self.achieved >= 0.9 * self.rate


def ramp(
    start: Callable[[], contextlib.AbstractContextManager[Target]],
    rates: tuple[int, ...],
    seconds: float,
) -> list[Step]:
    steps: list[Step] = []
    with start() as target:
        for rate in rates:
            calls = int(rate * seconds)
            before = cpu_seconds(target.pids())
            result = sipp(target, rate=rate, calls=calls, scenario=["-sn", "uac", "-d", "0"])
            time.sleep(1.0)  # answers to the last BYEs, and their timers, belong to this step
            spent = cpu_seconds(target.pids()) - before
            step = Step(rate, calls, result.failed, spent / calls, calls / result.seconds)
            steps.append(step)
            print(
                f"  {target.name}: {rate}/s asked, {step.achieved:.0f}/s done, {calls} calls, "
                f"{result.failed} failed, {spent / calls * 1e6:.0f} us CPU per call",
                flush=True,
            )
            if not step.kept_up:
                break
            time.sleep(2.0)  # let the transactions of this step time out before the next
    return steps


def best(steps: list[Step]) -> Step | None:
    passed = [s for s in steps if s.kept_up]
    return passed[-1] if passed else None


def at(steps: list[Step], rate: int) -> Step | None:
    return next((s for s in steps if s.rate == rate), None)


def us(step: Step | None) -> str:
    return f"{step.cpu_per_call * 1e6:.0f} µs" if step else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument("--skip-kamailio", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results: dict[str, list[Step]] = {}
    print("spaces-bridge (embedded conference server):")
    results["spaces-bridge"] = ramp(daemon, OURS, args.seconds)
    if not args.skip_kamailio:
        print(f"kamailio {kamailio_version()} (stateless sl_send_reply):")
        results["kamailio"] = ramp(kamailio, KAMAILIO, args.seconds)
    # The per-call ratio is taken at the highest rate both kept up with (1,000/s when both do).
    kept = [{s.rate for s in steps if s.kept_up} for steps in results.values()]
    common = [r for r in sorted(set.intersection(*kept)) if r <= REFERENCE_RATE]
    rate = common[-1] if common else None
    rows = []
    for name, steps in results.items():
        top = best(steps)
        compared = at(steps, rate) if rate else None
        rows.append([name, f"{top.rate}/s" if top else "none", us(compared), us(top)])
    if "kamailio" in results and rate:
        ours, theirs = at(results["spaces-bridge"], rate), at(results["kamailio"], rate)
        assert ours and theirs
        rows.append(["ours / kamailio", "", f"{ours.cpu_per_call / theirs.cpu_per_call:.1f}x", ""])
    print()
    headers = ["target", "highest rate kept up", f"CPU/call at {rate}/s", "CPU/call at highest"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
