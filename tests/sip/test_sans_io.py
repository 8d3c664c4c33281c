"""The SIP core does no I/O and reads no clock (docs/architecture.md): enforced on the source."""

from __future__ import annotations

import ast
import pathlib

import bridge.sip

FORBIDDEN = {"asyncio", "socket", "time", "random", "select", "selectors", "threading", "ssl"}


def test_sip_core_imports_no_io_modules() -> None:
    package = pathlib.Path(bridge.sip.__file__).parent
    offenders = []
    files = sorted(package.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
