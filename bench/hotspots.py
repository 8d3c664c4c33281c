"""Hot spots: summarise a py-spy raw profile (``py-spy record -f raw``) as two tables, the
functions where samples were taken (self) and the functions on the stack (inclusive), as shares
of all samples and, given the calls made while recording, as microseconds per call.

Run: .venv/bin/python bench/callrate.py --profile /tmp/calls.raw   (records a 700 calls/s step)
     .venv/bin/python bench/hotspots.py /tmp/calls.raw [--top 25] [--per-call-us 1300]
``--per-call-us`` is the CPU per call callrate.py measured: shares are converted with it.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import re

from _daemon import table

FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def function(frame: str) -> str:
    """``name (file)`` without the line number, so that one function is one row."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['name']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=pathlib.Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--per-call-us", type=float, help="CPU per call to convert shares with")
    args = parser.parse_args()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in args.raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [function(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    print(f"{total} samples in {args.raw}")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        rows = []
        for name, count in counter.most_common(args.top):
            share = count / total
            row = [f"{share * 100:.1f} %", name[:110]]
            if args.per_call_us:
                row.insert(1, f"{share * args.per_call_us:.0f} us")
            rows.append(row)
        headers = ["share", "function (file)"]
        if args.per_call_us:
            headers.insert(1, "per call")
        print(f"\n{title}:")
        print(table(headers, rows))


if __name__ == "__main__":
    main()
