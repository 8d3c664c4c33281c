"""A check both sans-IO cores share: which of their modules import an I/O, clock or randomness
module (docs/architecture.md, Conventions)."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterable

FORBIDDEN = {"asyncio", "socket", "time", "random", "select", "selectors", "threading", "ssl"}
"""What protocol code must not import: the adapters do the I/O and pass the time in."""


def io_imports(files: Iterable[pathlib.Path]) -> list[str]:
    """``file: module`` for each absolute import of a :data:`FORBIDDEN` module in ``files``."""
    offenders = []
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    return offenders
