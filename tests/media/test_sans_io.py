"""The media core does no I/O and reads no clock or randomness: enforced on the source.

``anchor.py`` and ``relay.py`` are the socket adapters that drive it and are exempt.
"""

from __future__ import annotations

import ast
import pathlib

import bridge.media

FORBIDDEN = {"asyncio", "socket", "time", "random", "select", "selectors", "threading", "ssl"}
ADAPTERS = {"anchor.py", "relay.py"}


def test_media_core_imports_no_io_modules() -> None:
    package = pathlib.Path(bridge.media.__file__).parent
    files = sorted(p for p in package.glob("*.py") if p.name not in ADAPTERS)
    assert {"rtp.py", "telephone_event.py", "g711.py", "packetizer.py", "rtcp.py", "stats.py"} <= {
        p.name for p in files
    }
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
    assert offenders == []
