"""The media core does no I/O and reads no clock or randomness: enforced on the source.

``anchor.py`` and ``relay.py`` are the socket adapters that drive it and are exempt.
"""

from __future__ import annotations

import pathlib

import bridge.media
from tests.sans_io import io_imports

ADAPTERS = {"anchor.py", "relay.py"}


def test_media_core_imports_no_io_modules() -> None:
    package = pathlib.Path(bridge.media.__file__).parent
    files = sorted(p for p in package.glob("*.py") if p.name not in ADAPTERS)
    assert {"rtp.py", "telephone_event.py", "g711.py", "packetizer.py", "rtcp.py", "stats.py"} <= {
        p.name for p in files
    }
    assert io_imports(files) == []
