"""The real Janus for the mixer's tests: installed with apt-get when missing and we are root (as
scripts/install-peers.sh installs the interop peers), else those tests are skipped, saying how to
install it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from bridge.conference.server.mixer.config import JanusConfig, find_libraries

INSTALL = "apt-get install -y janus"


def _install() -> str | None:
    """Why janus could not be installed, or None once it is."""
    if os.geteuid() != 0:
        return f"janus is not installed and we are not root: sudo {INSTALL}"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "janus"]):
        try:
            done = subprocess.run(
                command, env=environment, capture_output=True, text=True, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(command)} failed ({exc}): {INSTALL}"
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def janus_config() -> JanusConfig:
    """A configuration whose executable and libraries exist (the test skips if they cannot)."""
    if shutil.which("janus") is None or find_libraries(JanusConfig()) is None:
        problem = _install()
        if problem is not None:
            pytest.skip(problem)
    config = JanusConfig()
    if config.executable is None or find_libraries(config) is None:
        pytest.skip(f"janus is still missing after installing it: {INSTALL}")
    return config
