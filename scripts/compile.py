"""Compile the typed sans-IO layers with mypyc into a copy of the package (docs/decisions.md,
"Performance").

Usage: python scripts/compile.py OUT_DIR

Copies ``bridge/`` to ``OUT_DIR/bridge`` and builds there, beside their sources, the modules that
``pyproject.toml`` lists under ``[tool.spaces-bridge] compiled``; ``PYTHONPATH=OUT_DIR`` then imports
them (``make run``, ``make bench``, the second pass of ``make test``). The source tree is never
written to: a ``.so`` beside a ``.py`` there would shadow every later edit of that ``.py``.

Without a C compiler, Python's headers or mypyc, or when the build fails, it says why, leaves no
``OUT_DIR/bridge`` and exits 0: the pure-Python package is the same program, only slower.
``OUT_DIR/.built`` is written either way, so that make does not retry until a source changes.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]

SETUP = """\
from setuptools import setup
from mypyc.build import mypycify

setup(name="spaces-bridge-compiled", ext_modules=mypycify({files!r}, opt_level="3"))
"""


def compiled_modules(root: pathlib.Path = ROOT) -> list[str]:
    """The source files pyproject.toml lists for compiling, relative to the repository root."""
    with (root / "pyproject.toml").open("rb") as f:
        patterns: list[str] = tomllib.load(f)["tool"]["spaces-bridge"]["compiled"]
    files = sorted({str(p.relative_to(root)) for pattern in patterns for p in root.glob(pattern)})
    if not files:
        raise SystemExit("pyproject.toml lists no module to compile")
    return files


def missing_tools() -> str | None:
    """Why this machine cannot build extension modules, or None when it can."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    headers = pathlib.Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"no Python headers ({headers})"
    try:
        import mypyc  # noqa: F401, PLC0415  (a dev dependency: probed, not required)
    except ImportError:
        return "mypyc is not installed (it comes with mypy, a dev dependency)"
    return None


def build(out: pathlib.Path) -> str | None:
    """Build into ``out``; the reason when it could not."""
    reason = missing_tools()
    if reason is not None:
        return reason
    files = compiled_modules()
    work = out.with_name(out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(
        ROOT / "bridge", work / "bridge", ignore=shutil.ignore_patterns("__pycache__", "*.so")
    )
    (work / "setup.py").write_text(SETUP.format(files=files))
    log = work / "build.log"
    with log.open("wb") as output:
        # In the copy, where no pyproject.toml applies: mypy there runs with its defaults, which
        # the code (checked with --strict) satisfies.
        result = subprocess.run(
            [sys.executable, "setup.py", "build_ext", "--inplace"],
            cwd=work,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        return "the build failed:\n    " + "\n    ".join(tail)
    for leftover in ("build", "setup.py", "build.log", ".mypy_cache"):
        path = work / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)
    print(f"compiled {len(files)} modules with mypyc into {out}")
    return None


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = pathlib.Path(sys.argv[1]).resolve()
    reason = build(out)
    if reason is not None:
        shutil.rmtree(out / "bridge", ignore_errors=True)
        print(f"compiled modules not built: {reason}", file=sys.stderr)
        print("the pure-Python package runs instead (same behaviour, slower)", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    (out / ".built").touch()


if __name__ == "__main__":
    main()
