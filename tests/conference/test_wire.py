"""The conference API's shared rules (bridge/conference/wire.py): what both ends decide alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.calls.version import Generation, classify
from bridge.conference.wire import is_modern


@pytest.mark.parametrize(
    ("version", "modern"),
    [
        (None, False),
        ("", False),
        ("1.0", False),
        ("0.9", False),
        ("1", False),
        ("1.1", True),
        (" 1.1 ", True),
        ("1.10", True),
        ("1.1.3", True),
        ("2", True),  # a bare major: 2.0
        ("2.0", True),
        ("1.1-beta", False),  # a pre-release comes before 1.1
        ("v1.1", False),
        ("abc", False),
        ("1.1.1.1", False),
        ("1234567.1", False),
        ("\u0661.\u0661", False),  # Arabic-Indic digits: not a version here
    ],
)
def test_one_rule_says_which_endpoints_are_modern(version: str | None, modern: bool) -> None:
    assert is_modern(version) is modern
    # The phone's spacesVersion header is read by the same rule as a client's version.
    assert classify(version) is (Generation.MODERN if modern else Generation.LEGACY)


@given(st.integers(0, 999_999), st.integers(0, 999_999))
def test_major_minor_compare_as_numbers(major: int, minor: int) -> None:
    assert is_modern(f"{major}.{minor}") is ((major, minor) >= (1, 1))
