"""INFO bodies: DTMF keys in both formats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.sip import bodies
from bridge.sip.bodies import DtmfKey, parse_dtmf
from bridge.sip.errors import RemoteProtocolError


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b"Signal=5\r\nDuration=160\r\n", DtmfKey("5", 160)),
        (b"Signal=*\nDuration=100\n", DtmfKey("*", 100)),  # LF only
        (b"signal = # \r\nduration= 250", DtmfKey("#", 250)),  # case and spaces
        (b"Signal=10\r\nDuration=100\r\n", DtmfKey("*", 100)),  # RFC 4733 event code
        (b"Signal=11\r\n", DtmfKey("#", None)),
        (b"Signal=d\r\nDuration=x\r\n", DtmfKey("D", None)),  # bad duration ignored
        (b"Vendor=1\r\nSignal=9\r\n", DtmfKey("9", None)),  # unknown keys ignored
        (b"Signal=1\rDuration=90\r", DtmfKey("1", 90)),  # CR only
        (b"SIGNAL=15\r\nDURATION=0\r\n", DtmfKey("D", 0)),
        (b"Signal=2\r\nDuration=60001\r\n", DtmfKey("2", None)),  # implausible: dropped
        (b"Signal=3\r\nDuration=99999999999999999999\r\n", DtmfKey("3", None)),
        ("Signal=4\r\nDuration=²\r\n".encode(), DtmfKey("4", None)),
        (b"Signal=5\r\nSignal=6\r\n", DtmfKey("6", None)),  # the last one counts
    ],
)
def test_dtmf_relay(body: bytes, key: DtmfKey) -> None:
    assert parse_dtmf(body, bodies.DTMF_RELAY) == key


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Duration=100\r\n",
        b"Signal=\r\n",
        b"Signal=E",
        b"Signal=55",
        b"Signal=16",  # flash (RFC 4733 §3.2) is not a key
        b"Signal 5",
        b"Signal=\xb5",
        b"Signal=5" + b" " * 5000,  # over MAX_BODY
    ],
)
def test_dtmf_relay_without_a_key_is_400(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_dtmf(body, bodies.DTMF_RELAY)
    assert info.value.status_hint == 400


def test_plain_dtmf_body() -> None:
    assert parse_dtmf(b"7", bodies.DTMF) == DtmfKey("7")
    assert parse_dtmf(b" 11\r\n", bodies.DTMF) == DtmfKey("#")
    assert parse_dtmf(b"a", bodies.DTMF) == DtmfKey("A")
    # Phones that label a dtmf-relay body application/dtmf are understood.
    assert parse_dtmf(b"Signal=8\r\nDuration=100\r\n", bodies.DTMF) == DtmfKey("8", 100)
    for body in (b"77", b"", b"#*"):
        with pytest.raises(RemoteProtocolError) as info:
            parse_dtmf(body, bodies.DTMF)
        assert info.value.status_hint == 400


def test_content_type_is_matched_without_case_or_parameters() -> None:
    assert parse_dtmf(b"Signal=1", "Application/DTMF-Relay; charset=us-ascii") == DtmfKey("1")
    assert parse_dtmf(b"1", " application/dtmf ") == DtmfKey("1")


def test_other_body_types_are_415_with_accept() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_dtmf(b"Signal=1", "text/plain")
    assert info.value.status_hint == 415
    assert info.value.extra_headers == (("Accept", "application/dtmf-relay, application/dtmf"),)


def test_constants() -> None:
    assert bodies.DTMF_RELAY == "application/dtmf-relay"
    assert bodies.DTMF == "application/dtmf"


_RELAY_LINES = st.lists(
    st.sampled_from([b"Signal=", b"Duration=", b"signal = ", b"=", b"\r", b"\n", b"\r\n"])
    | st.sampled_from([b"5", b"#", b"10", b"16", b"d", b"160", b"99999999"])
    | st.binary(max_size=6),
    max_size=12,
).map(b"".join)


@given(
    st.binary(max_size=300) | _RELAY_LINES,
    st.sampled_from([bodies.DTMF_RELAY, bodies.DTMF, "APPLICATION/DTMF; x=1", "text/plain"]),
)
def test_any_dtmf_body_parses_or_raises_the_documented_error(body: bytes, ctype: str) -> None:
    status = 200
    try:
        key = parse_dtmf(body, ctype)
    except RemoteProtocolError as exc:
        status = exc.status_hint
    else:
        assert key.digit in "0123456789*#ABCD" and len(key.digit) == 1
        assert key.duration_ms is None or 0 <= key.duration_ms <= bodies.MAX_DURATION_MS
    assert status in ((415,) if ctype == "text/plain" else (200, 400))
