"""The coverage-guided fuzz target (``fuzz_sip.py``) run for a bounded time, seeded with every RFC
4475 message on both paths (datagram parse and stream framing). Where atheris does not install,
the Hypothesis fuzz tests in ``test_fuzz.py`` still run."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import CORPUS

TARGET = pathlib.Path(__file__).with_name("fuzz_sip.py")
#: Seconds of fuzzing in CI; SPACES_FUZZ_SECONDS=3600 for a long local run.
SECONDS = int(os.environ.get("SPACES_FUZZ_SECONDS", "15"))


def test_atheris_finds_no_crash_in_the_parser_or_framer(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("atheris", reason="atheris does not install here; test_fuzz.py covers it")
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    for path in sorted(CORPUS.glob("*.dat")):
        data = path.read_bytes()
        for mode in (b"\x01", b"\x03", b"\x00", b"\x0e"):  # parse, datagram parse, framer cuts
            (seeds / f"{path.stem}-{mode[0]}").write_bytes(mode + data)
    run = subprocess.run(
        [
            sys.executable, str(TARGET), str(seeds),
            f"-max_total_time={SECONDS}", "-rss_limit_mb=2048", "-max_len=70000",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        check=False,
    )  # fmt: skip
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert run.returncode == 0, f"{crashes}\n{run.stderr[-4000:]}"
    assert "Done" in run.stderr, run.stderr[-2000:]
