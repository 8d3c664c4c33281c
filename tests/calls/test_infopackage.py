"""The bridge's INFO package: JSON requests from modern endpoints, and what we send back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.calls import infopackage
from bridge.calls.infopackage import (
    LowerHandRequest,
    MediaStateRequest,
    RaiseHandRequest,
    parse_request,
)
from bridge.sip.errors import RemoteProtocolError
from tests.calls.test_settings import invite

VIA = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1"


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
    assert parse_request(body) == expected


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
        parse_request(body)
    assert info.value.status_hint == 400
    assert words in info.value.reason


@pytest.mark.parametrize("kind", [b"dance", b"MEDIASTATE", b"reply", b""])
def test_unknown_json_type_is_415(kind: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_request(b'{"type":"' + kind + b'","id":"1"}')
    assert info.value.status_hint == 415


def test_constants() -> None:
    assert infopackage.CONTENT_TYPE == "application/vnd.spaces.bridge+json"
    assert infopackage.PACKAGE == "spaces-bridge"


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (
            infopackage.encode_reply("9", "denied", "prevent unmuting"),
            b'{"id":"9","reason":"prevent unmuting","status":"denied","type":"reply"}',
        ),
        (infopackage.encode_reply("9", "ok"), b'{"id":"9","status":"ok","type":"reply"}'),
        (
            infopackage.encode_reply("é", "failed", "server unreachable"),
            b'{"id":"\\u00e9","reason":"server unreachable","status":"failed","type":"reply"}',
        ),
        (
            infopackage.tracksstatus_event(audio=False, video=True),
            b'{"audio":false,"type":"tracksstatus.change","video":true}',
        ),
        (infopackage.hand_event("raised"), b'{"state":"raised","type":"hand"}'),
        (infopackage.hand_event("lowered"), b'{"state":"lowered","type":"hand"}'),
        (infopackage.hand_event("accepted"), b'{"state":"accepted","type":"hand"}'),
        (infopackage.muteall_event("muting"), b'{"phase":"muting","type":"muteall"}'),
        (infopackage.muteall_event("muted"), b'{"phase":"muted","type":"muteall"}'),
        (infopackage.lobby_event("waiting"), b'{"state":"waiting","type":"lobby"}'),
        (infopackage.lobby_event("admitted"), b'{"state":"admitted","type":"lobby"}'),
        (infopackage.lobby_event("denied"), b'{"state":"denied","type":"lobby"}'),
        (
            infopackage.preventunmuting_event(enabled=True),
            b'{"enabled":true,"type":"preventunmuting"}',
        ),
        (infopackage.meeting_event("ended"), b'{"state":"ended","type":"meeting"}'),
    ],
)
def test_what_we_send(encoded: bytes, expected: bytes) -> None:
    assert encoded == expected
    assert json.loads(encoded) == json.loads(expected)


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
        parse_request(body)
    except RemoteProtocolError as exc:
        status = exc.status_hint
    assert status in (200, 400, 415)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ((), None),  # no header: the dialog's set stays as it was
        (("",), False),  # empty: no package at all
        (("spaces-bridge",), True),
        (("foo , SPACES-BRIDGE",), True),
        (("foo", "spaces-bridge"), True),  # two header fields
        (("foo, spaces-bridges",), False),
    ],
)
def test_recv_info_lists_our_package_or_not(fields: tuple[str, ...], expected: bool | None) -> None:
    request = invite(VIA, headers=tuple(f"Recv-Info: {field}" for field in fields))
    assert infopackage.listed(request) is expected


def test_negotiation_marks_the_shared_method_sets() -> None:
    methods = frozenset({"sdp", "info"})
    marked = infopackage.with_listed(methods, True)
    assert marked == {"sdp", "info", infopackage.NEGOTIATED}
    assert infopackage.with_listed(frozenset(methods), True) is marked  # one set, not one a call
    assert infopackage.with_listed(marked, False) == methods
