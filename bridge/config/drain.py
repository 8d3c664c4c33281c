"""``[drain]``: how a stopping daemon lets its calls end."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .values import known as _known
from .values import seconds as _seconds


@dataclass(frozen=True, slots=True)
class DrainConfig:
    grace_seconds: float = 5.0
    """On SIGTERM: how long established calls may go on before the bridge sends BYE."""
    bye_wait_seconds: float = 2.0
    """After sending BYE: how long to wait for the phones' answers before exiting."""


_DEFAULT = DrainConfig()


def read_drain(data: Mapping[str, Any], source: str) -> DrainConfig:
    _known(data, ("grace_seconds", "bye_wait_seconds"), source, "drain.")
    return DrainConfig(
        grace_seconds=_seconds(data, "grace_seconds", source, _DEFAULT.grace_seconds),
        bye_wait_seconds=_seconds(data, "bye_wait_seconds", source, _DEFAULT.bye_wait_seconds),
    )
