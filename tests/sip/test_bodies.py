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
    ],
)
def test_dtmf_relay(body: bytes, key: DtmfKey) -> None:
    assert parse_dtmf(body, bodies.DTMF_RELAY) == key


@pytest.mark.parametrize(
    "body", [b"", b"Duration=100\r\n", b"Signal=\r\n", b"Signal=E", b"Signal=55"]
)
def test_dtmf_relay_without_a_key_is_400(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_dtmf(body, bodies.DTMF_RELAY)
    assert info.value.status_hint == 400


def test_plain_dtmf_body() -> None:
    assert parse_dtmf(b"7", bodies.DTMF) == DtmfKey("7")
    assert parse_dtmf(b" 11\r\n", bodies.DTMF) == DtmfKey("#")
    with pytest.raises(RemoteProtocolError):
        parse_dtmf(b"77", bodies.DTMF)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"type":"mediastate","id":"1","audio":false}', MediaStateRequest("1", False, None)),
        (b'{"type":"mediastate","id":"a","video":true}', MediaStateRequest("a", None, True)),
        (b'{"type":"raisehand","id":"2"}', RaiseHandRequest("2")),
        (b'{"type":"lowerhand","id":"3","extra":1}', LowerHandRequest("3")),
    ],
)
def test_json_requests(body: bytes, expected: object) -> None:
    assert parse_json_request(body) == expected


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff", "not JSON"),
        (b"{", "not JSON"),
        (b"[]", "object"),
        (b'{"id":"1"}', '"type"'),
        (b'{"type":"raisehand"}', '"id"'),
        (b'{"type":"raisehand","id":""}', '"id"'),
        (b'{"type":"raisehand","id":7}', '"id"'),
        (b'{"type":"raisehand","id":"' + b"x" * 200 + b'"}', '"id"'),
        (b'{"type":"mediastate","id":"1"}', '"audio" or "video"'),
        (b'{"type":"mediastate","id":"1","audio":"no"}', "true or false"),
        (b'{"type":"mediastate","id":"1","audio":1}', "true or false"),
        (b'{"pad":"' + b"x" * 5000 + b'"}', "too large"),
    ],
)
def test_malformed_json_is_400_with_a_reason(body: bytes, words: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_json_request(body)
    assert info.value.status_hint == 400
    assert words in info.value.reason


def test_unknown_json_type_is_415() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_json_request(b'{"type":"dance","id":"1"}')
    assert info.value.status_hint == 415


def test_what_we_send() -> None:
    assert bodies.encode_reply("9", "denied", "prevent unmuting") == (
        b'{"id":"9","reason":"prevent unmuting","status":"denied","type":"reply"}'
    )
    assert bodies.encode_reply("9", "ok") == b'{"id":"9","status":"ok","type":"reply"}'
    assert bodies.tracksstatus_event(audio=False, video=True) == (
        b'{"audio":false,"type":"tracksstatus.change","video":true}'
    )
    assert json.loads(bodies.hand_event("accepted")) == {"type": "hand", "state": "accepted"}
    assert json.loads(bodies.muteall_event("muting")) == {"type": "muteall", "phase": "muting"}
    assert json.loads(bodies.lobby_event("waiting")) == {"type": "lobby", "state": "waiting"}
    assert json.loads(bodies.preventunmuting_event(enabled=True)) == {
        "type": "preventunmuting",
        "enabled": True,
    }
    assert json.loads(bodies.meeting_event("ended")) == {"type": "meeting", "state": "ended"}


@given(st.binary(max_size=300), st.sampled_from([bodies.DTMF_RELAY, bodies.DTMF]))
def test_any_dtmf_body_parses_or_raises_the_documented_error(body: bytes, ctype: str) -> None:
    try:
        key = parse_dtmf(body, ctype)
    except RemoteProtocolError:
        return
    assert key.digit in "0123456789*#ABCD"


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
