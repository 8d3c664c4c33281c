"""The container image's recipe, checked without Docker: hadolint, and what the image must contain."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(pathlib.Path(sys.executable).parent))
    if hadolint is None:
        pytest.fail("hadolint is not installed (it comes with the dev dependencies)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_unprivileged_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    assert "\nUSER 10001\n" in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'ENTRYPOINT ["/opt/venv/bin/spaces-bridge"]' in text


def test_console_files_are_package_data() -> None:
    """A non-editable install (the image's) must carry the console's files."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    console = ROOT / "bridge" / "conference" / "server" / "console"
    files = [path for path in console.rglob("*") if path.is_file()]
    assert len(files) >= 4, console  # index.html, console.js and .css, the vendored client
    for path in files:
        pattern = f"console/{'vendor/' if path.parent.name == 'vendor' else ''}*"
        suffix = "" if path.parent.name == "vendor" else path.suffix
        assert f'"{pattern}{suffix}"' in pyproject, path
