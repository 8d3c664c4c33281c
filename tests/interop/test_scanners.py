"""The SIPVicious tools against the daemon on loopback: known scanners get no answer at all, and a
scanner that hides its name finds no extension and cracks no password once digest auth is on."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from tests.interop.harness import running_daemon
from tests.interop.test_ops import get, sample

pytestmark = pytest.mark.interop

BIN = pathlib.Path(sys.executable).parent
AUTH = """
[auth]
users = [{ user = "1001", password_env = "PW", role = "moderator" }]
"""


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = BIN / f"sipvicious_{name}"
    if not path.exists():
        pytest.fail(f"{path.name} is not installed (it comes with the dev dependencies)")
    return subprocess.run(
        [str(path), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_svmap_and_svwar_get_no_answer(tmp_path: pathlib.Path) -> None:
    with running_daemon(tmp_path) as daemon:
        found = tool("svmap", "127.0.0.1", "-p", str(daemon.port), "-t", "0.05")
        assert "found nothing" in found.stderr + found.stdout, found.stdout + found.stderr
        war = tool("svwar", "127.0.0.1", "-p", str(daemon.port), "-e", "100-120", "-m", "INVITE")
        assert "found nothing" in war.stderr + war.stdout, war.stdout + war.stderr
        _, text = get(daemon.ops_url + "/metrics")
        assert sample(text, "spaces_bridge_sip_dropped_total", reason="scanner") >= 2
        assert not daemon.log_has("call offered")


def test_a_disguised_scanner_finds_no_extension_and_cracks_nothing(
    tmp_path: pathlib.Path,
) -> None:
    words = tmp_path / "words.txt"
    words.write_text("\n".join(["1234", "password", "1001", "secret", "admin", "0000"]) + "\n")
    disguise = ("-u", "Yealink SIP-T46S 66.86.0.15")
    with running_daemon(
        tmp_path, extra_config=AUTH, env={"PW": "a-long-moderator-password"}
    ) as daemon:
        port = str(daemon.port)
        war = tool("svwar", "127.0.0.1", "-p", port, "-e", "1000-1010", "-m", "INVITE", *disguise)
        # Every extension gets the same 401: nothing tells existing users from others.
        assert "1001" not in war.stdout, war.stdout + war.stderr
        crack = tool("svcrack", "127.0.0.1", "-p", port, "-u", "1001", "-d", str(words), *disguise)
        assert "a-long-moderator-password" not in crack.stdout
        assert "found nothing" in crack.stderr + crack.stdout, crack.stdout + crack.stderr
        assert not daemon.log_has("call offered")
