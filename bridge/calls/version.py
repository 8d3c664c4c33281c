"""The ``spacesVersion`` header: which client generation an endpoint is (docs/behaviour.md, Legacy
and modern endpoints)."""

from __future__ import annotations

import re
from enum import Enum

MODERN_SINCE = (1, 1)
_VERSION_RE = re.compile(r"\s*([0-9]{1,4})\.([0-9]{1,4})(?:\.[0-9]{1,6})?\s*\Z")


class Generation(Enum):
    LEGACY = "legacy"
    MODERN = "modern"


def classify(value: str | None) -> Generation:
    """``1.1`` or higher → modern; absent, ``1.0`` or unparsable → legacy."""
    if value is None:
        return Generation.LEGACY
    match = _VERSION_RE.match(value)
    if match is None:
        return Generation.LEGACY
    version = (int(match[1]), int(match[2]))
    return Generation.MODERN if version >= MODERN_SINCE else Generation.LEGACY
