"""The ``spacesVersion`` header: which client generation an endpoint is (docs/behaviour.md, Legacy
and modern endpoints). The rule is the conference API's own (:func:`~bridge.conference.wire.is_modern`),
so that a phone and the server's view of it never disagree."""

from __future__ import annotations

from enum import Enum

from ..conference.wire import is_modern


class Generation(Enum):
    LEGACY = "legacy"
    MODERN = "modern"


def classify(value: str | None) -> Generation:
    """``1.1`` or higher → modern; absent, ``1.0`` or unparsable → legacy."""
    return Generation.MODERN if is_modern(value) else Generation.LEGACY
