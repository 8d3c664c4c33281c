"""INFO bodies: DTMF keys in both formats, the Spaces JSON requests, and what we send back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.sip import bodies
from bridge.sip.bodies import (
    DtmfKey,
    LowerHandRequest,
    MediaStateRequest,
    RaiseHandRequest,
    parse_dtmf,
    parse_json_request,
)
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


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"type":"mediastate","id":"1","audio":false}', MediaStateRequest("1", False, None)),
        (b'{"type":"mediastate","id":"a","video":true}', MediaStateRequest("a", None, True)),
        (b'{"type":"raisehand","id":"2"}', RaiseHandRequest("2")),
        (b'{"type":"lowerhand","id":"3","extra":1}', LowerHandRequest("3")),
        (  # null counts as absent
            b'{"type":"mediastate","id":"4","audio":null,"video":false}',
            MediaStateRequest("4", None, False),
        ),
        (
            b' {"audio":true,"video":true,"type":"mediastate","id":"x"}\r\n',
            MediaStateRequest("x", True, True),
        ),
        (b'{"type":"raisehand","id":"' + b"i" * 128 + b'"}', RaiseHandRequest("i" * 128)),
        ('{"type":"raisehand","id":"é✓"}'.encode(), RaiseHandRequest("é✓")),
    ],
)
def test_json_requests(body: bytes, expected: object) -> None:
    assert parse_json_request(body) == expected


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff", "not JSON"),
        (b"{", "not JSON"),
        (b"", "not JSON"),
        (b"[" * 4000, "nested too deeply"),  # deeper than the decoder's recursion limit
        (b"[]", "object"),
        (b'"raisehand"', "object"),
        (b"null", "object"),
        (b'{"id":"1"}', '"type"'),
        (b'{"type":7,"id":"1"}', '"type"'),
        (b'{"type":"raisehand"}', '"id"'),
        (b'{"type":"raisehand","id":""}', '"id"'),
        (b'{"type":"raisehand","id":7}', '"id"'),
        (b'{"type":"raisehand","id":"' + b"x" * 200 + b'"}', '"id"'),
        (b'{"type":"mediastate","id":"1"}', '"audio" or "video"'),
        (b'{"type":"mediastate","id":"1","audio":"no"}', "true or false"),
        (b'{"type":"mediastate","id":"1","audio":1}', "true or false"),
        (b'{"type":"mediastate","id":"1","audio":true,"video":"on"}', "true or false"),
        (b'{"type":"mediastate","id":"1","audio":null,"video":null}', '"audio" or "video"'),
        (b'{"pad":"' + b"x" * 5000 + b'"}', "too large"),
    ],
)
def test_malformed_json_is_400_with_a_reason(body: bytes, words: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_json_request(body)
    assert info.value.status_hint == 400
    assert words in info.value.reason


@pytest.mark.parametrize("kind", [b"dance", b"MEDIASTATE", b"reply", b""])
def test_unknown_json_type_is_415(kind: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_json_request(b'{"type":"' + kind + b'","id":"1"}')
    assert info.value.status_hint == 415


def test_constants() -> None:
    assert bodies.DTMF_RELAY == "application/dtmf-relay"
    assert bodies.DTMF == "application/dtmf"
    assert bodies.SPACES_JSON == "application/vnd.spaces.bridge+json"
    assert bodies.INFO_PACKAGE == "spaces-bridge"


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (
            bodies.encode_reply("9", "denied", "prevent unmuting"),
            b'{"id":"9","reason":"prevent unmuting","status":"denied","type":"reply"}',
        ),
        (bodies.encode_reply("9", "ok"), b'{"id":"9","status":"ok","type":"reply"}'),
        (
            bodies.encode_reply("é", "failed", "server unreachable"),
            b'{"id":"\\u00e9","reason":"server unreachable","status":"failed","type":"reply"}',
        ),
        (
            bodies.tracksstatus_event(audio=False, video=True),
            b'{"audio":false,"type":"tracksstatus.change","video":true}',
        ),
        (bodies.hand_event("raised"), b'{"state":"raised","type":"hand"}'),
        (bodies.hand_event("lowered"), b'{"state":"lowered","type":"hand"}'),
        (bodies.hand_event("accepted"), b'{"state":"accepted","type":"hand"}'),
        (bodies.muteall_event("muting"), b'{"phase":"muting","type":"muteall"}'),
        (bodies.muteall_event("muted"), b'{"phase":"muted","type":"muteall"}'),
        (bodies.lobby_event("waiting"), b'{"state":"waiting","type":"lobby"}'),
        (bodies.lobby_event("admitted"), b'{"state":"admitted","type":"lobby"}'),
        (bodies.lobby_event("denied"), b'{"state":"denied","type":"lobby"}'),
        (
            bodies.preventunmuting_event(enabled=True),
            b'{"enabled":true,"type":"preventunmuting"}',
        ),
        (bodies.meeting_event("ended"), b'{"state":"ended","type":"meeting"}'),
    ],
)
def test_what_we_send(encoded: bytes, expected: bytes) -> None:
    assert encoded == expected
    assert json.loads(encoded) == json.loads(expected)


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


@given(
    st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
    ).map(lambda value: json.dumps(value).encode())
)
def test_any_json_body_parses_or_raises_the_documented_error(body: bytes) -> None:
    status = 200
    try:
        parse_json_request(body)
    except RemoteProtocolError as exc:
        status = exc.status_hint
    assert status in (200, 400, 415)
