"""Shared test fixtures and paths."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "rfc4475"
"""The RFC 4475 torture messages, byte for byte as the RFC's archive carries them."""
