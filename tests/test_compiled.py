"""Which build of the compiled layers this run imports (docs/decisions.md, "Performance").

``make test`` runs the compiled layers' tests twice: against the sources, then, with
``SPACES_BRIDGE_COMPILED=1``, against the modules ``scripts/compile.py`` built into a copy of the
package. These tests prove which build ran, so that a second pass that quietly imported the sources
cannot pass for the compiled one; and that a machine without a C compiler gets the pure package.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import pathlib
import subprocess
import sys
from types import ModuleType

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMPILED = os.environ.get("SPACES_BRIDGE_COMPILED") == "1"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compile_script", ROOT / "scripts" / "compile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _module_names() -> list[str]:
    files: list[str] = _script().compiled_modules(ROOT)
    return [f.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for f in files]


def test_the_listed_modules_are_the_build_this_run_expects() -> None:
    names = _module_names()
    assert "bridge.sip.parser" in names and "bridge.calls.policy" in names
    for name in names:
        origin = pathlib.Path(importlib.import_module(name).__file__ or "")
        if COMPILED:
            assert origin.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), origin
            assert not origin.is_relative_to(ROOT / "bridge"), origin  # the copy, not the sources
        else:
            assert origin.suffix == ".py", origin


def test_the_sources_carry_no_extension_modules() -> None:
    """A .so beside a .py in the source tree would be imported instead of the .py being edited."""
    assert not [p for p in (ROOT / "bridge").rglob("*") if p.suffix in (".so", ".pyd")]


def test_without_a_c_compiler_the_build_says_so_and_leaves_the_pure_package(
    tmp_path: pathlib.Path,
) -> None:
    out = tmp_path / "compiled"
    (out / "bridge").mkdir(parents=True)  # a previous build's modules must not survive
    result = subprocess.run(
        [sys.executable, "-P", str(ROOT / "scripts" / "compile.py"), str(out)],
        env={"PATH": str(tmp_path)},  # no compiler on it
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "compiled modules not built: no C compiler" in result.stderr
    assert "the pure-Python package runs instead" in result.stderr
    assert (out / ".built").exists()
    assert not (out / "bridge").exists()
