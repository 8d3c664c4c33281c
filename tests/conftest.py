"""Shared test fixtures and paths."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "rfc4475"
if not CORPUS.is_dir():  # a clone without the shared folder beside it uses the copy in tests/
    CORPUS = ROOT / "tests" / "data" / "rfc4475"
