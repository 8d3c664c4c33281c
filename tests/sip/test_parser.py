"""Parser, serializer, typed accessors and stream framer."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.sip.errors import RemoteProtocolError
from bridge.sip.headers import Headers
from bridge.sip.message import Request, Response, response_to
from bridge.sip.parser import (
    KEEPALIVE_PING,
    MAX_HEADERS,
    MAX_MESSAGE_BYTES,
    KeepAlivePing,
    StreamFramer,
    parse_message,
)
from bridge.sip.uri import AbsoluteUri, SipUri, parse_name_addr, parse_uri
from tests.conftest import CORPUS

INVITE = (
    b"INVITE sip:demo@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice Phone" <sip:alice@192.0.2.10>;tag=1928301774\r\n'
    b"To: <sip:demo@127.0.0.1>\r\n"
    b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>\r\n"
    b"spacesVersion: 1.1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def manifest() -> list[dict[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_typical_invite() -> None:
    m = parse_message(INVITE)
    assert isinstance(m, Request)
    assert m.method == "INVITE"
    assert m.uri == SipUri("sip", "127.0.0.1", user="demo")
    assert m.top_via.branch == "z9hG4bK776asdhds"
    assert m.top_via.wants_rport and m.top_via.rport is None
    assert m.top_via.port == 5060
    assert m.from_.display_name == "Alice Phone"
    assert m.from_.tag == "1928301774"
    assert m.to.tag is None
    assert m.call_id == "a84b4c76e66710@192.0.2.10"
    assert (m.cseq.seq, m.cseq.method) == (314159, "INVITE")
    assert m.headers.get("SPACESVERSION") == "1.1"
    assert m.content_type == "application/sdp"
    assert m.body == b"v=0\n"


def test_compact_forms_and_lf_only() -> None:
    data = INVITE.replace(b"\r\n", b"\n").replace(b"Via:", b"v:").replace(b"Call-ID:", b"i:")
    m = parse_message(data)
    assert m.call_id == "a84b4c76e66710@192.0.2.10"
    assert m.top_via.host == "192.0.2.10"
    assert m.headers.get("v") == m.headers.get("Via")


def test_folding_and_multi_value() -> None:
    m = parse_message(
        b"OPTIONS sip:x@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,\r\n"
        b" SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2\r\n"
        b"Via: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK3\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\nCall-ID: c\r\n"
        b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    assert [(v.transport, v.host, v.port) for v in m.vias] == [
        ("UDP", "a.example.com", None),
        ("TCP", "b.example.com", 5070),
        ("TLS", "[2001:db8::1]", 5061),
    ]


def test_wsinv_tortuous_values() -> None:
    m = parse_message((CORPUS / "wsinv.dat").read_bytes())
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.to.tag == "1918181833n"
    assert m.cseq.seq == 9
    assert [v.branch for v in m.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.contacts[0].param("q") == "0.33"
    assert len(m.body) == 150


def test_escapes_are_undone_once() -> None:
    m = parse_message((CORPUS / "esc01.dat").read_bytes())
    assert isinstance(m, Request)
    assert isinstance(m.uri, SipUri)
    assert m.uri.user == "sips:user@example.com"
    nul = parse_message((CORPUS / "escnull.dat").read_bytes())
    assert nul.to.uri.user == "null-\x00-null"  # type: ignore[union-attr]
    assert parse_uri("sip:%2541@example.com").user == "%41"  # type: ignore[union-attr]


def test_uri_forms() -> None:
    uri = parse_uri("sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?subject=hi%20there")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "[2001:db8::1]",
        5061,
    )
    assert uri.transport == "tls" and uri.has_param("lr")
    assert uri.headers == (("subject", "hi there"),)
    assert parse_uri(str(uri)) == uri
    assert parse_uri("tel:+1-201-555-0123") == AbsoluteUri("tel", "+1-201-555-0123")
    for bad in ("sip:", "sip:user@", "sip:a b@c", "<sip:a@b>", "sip:host:99999", "sip:h:x"):
        with pytest.raises(RemoteProtocolError):
            parse_uri(bad)


def test_name_addr_forms() -> None:
    a = parse_name_addr('"Watson, \\"Tom\\"" <sip:t@example.org>;tag=9')
    assert a.display_name == 'Watson, "Tom"' and a.tag == "9"
    assert parse_name_addr(str(a)) == a
    b = parse_name_addr("sip:bob@example.org;tag=7")  # addr-spec: the param is the header's
    assert b.tag == "7" and isinstance(b.uri, SipUri) and b.uri.params == ()
    c = parse_name_addr("Bob Smith<sip:bob@example.org>")
    assert c.display_name == "Bob Smith"


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"INVITE sip:a@b SIP/3.0\r\n\r\n", 505),
        (b"INVITE sip:a@b\r\n\r\n", 400),
        (b"INVITE  sip:a@b SIP/2.0\r\n\r\n", 400),
        (b"SIP/2.0 99 Odd\r\n\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nshort", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nl: 1\r\nl: 1\r\n\r\nx", 400),
        (b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", 400),
    ],
)
def test_malformed_messages(data: bytes, hint: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert info.value.status_hint == hint


def test_bounds() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(INVITE + b"x" * MAX_MESSAGE_BYTES)
    assert info.value.status_hint == 513
    many = b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X-A: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(many)
    assert info.value.status_hint == 513
    long_line = b"OPTIONS sip:a@b SIP/2.0\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n"
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(long_line)
    assert info.value.status_hint == 513


def test_datagram_trailing_octets_ignored() -> None:
    m = parse_message((CORPUS / "dblreq.dat").read_bytes())
    assert isinstance(m, Request) and m.method == "REGISTER" and m.body == b""


@pytest.mark.parametrize("row", manifest(), ids=lambda r: r["file"])
def test_rfc4475_parse_or_reject(row: dict[str, str]) -> None:
    """Every torture message is parsed, or rejected with a RemoteProtocolError — nothing else."""
    data = (CORPUS / row["file"]).read_bytes()
    rejection: RemoteProtocolError | None = None
    try:
        message = parse_message(data)
        message.vias  # noqa: B018
        message.from_  # noqa: B018
        message.to  # noqa: B018
        message.cseq  # noqa: B018
        message.contacts  # noqa: B018
        if isinstance(message, Request):
            message.uri  # noqa: B018
    except RemoteProtocolError as exc:
        rejection = exc
    if rejection is not None:
        # Valid messages must parse; the RFC's "invalid" class may be rejected here.
        assert row["class"] != "valid", f"{row['file']} is valid but was rejected: {rejection}"
        if row["expect"].isdigit() and row["class"] == "invalid":
            assert rejection.status_hint in (int(row["expect"]), 400)
    # What a UAS answers to each message (400, 501, 416...) is checked end to end in test_endpoint.


def test_response_to_copies_routing_headers() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    resp = response_to(req, 180, to_tag="abc")
    again = parse_message(resp.encode())
    assert isinstance(again, Response)
    assert (again.status, again.reason) == (180, "Ringing")
    assert again.to.tag == "abc"
    assert again.vias == req.vias and again.call_id == req.call_id and again.cseq == req.cseq
    assert b"Content-Length: 0\r\n\r\n" in resp.encode()


# -- property tests ------------------------------------------------------------------------------
_token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)
_value = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters=",\x7f"),
    min_size=1,
    max_size=30,
).map(lambda s: s.replace(" ", ""))
_host = st.sampled_from(["example.com", "192.0.2.1", "[2001:db8::2]", "a-b.example.org"])


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(_token).upper()
    user = draw(st.text(alphabet="abcdefghijklmnop0123456789;?=@%/ ", min_size=1, max_size=10))
    uri = SipUri("sip", draw(_host), user=user, port=draw(st.none() | st.integers(1, 65535)))
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP {draw(_host)};branch=z9hG4bK{draw(_token)}")
    h.add("From", f"<sip:a@{draw(_host)}>;tag={draw(_token)}")
    h.add("To", str(parse_name_addr(f"<{uri}>")))
    h.add("Call-ID", draw(_token))
    h.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    for _ in range(draw(st.integers(0, 5))):
        h.add("X-" + draw(_token), draw(_value))
    body = draw(st.binary(max_size=64))
    return Request(method, uri, h, body)


@given(requests())
@settings(max_examples=300)
def test_serialize_parse_round_trip(request: Request) -> None:
    wire = request.encode()
    parsed = parse_message(wire, datagram=False)
    assert isinstance(parsed, Request)
    assert parsed.method == request.method
    assert parsed.uri == request.uri
    assert list(parsed.headers) == [*request.headers, ("content-length", str(len(request.body)))]
    assert parsed.body == request.body
    assert parsed.encode() == wire


@given(st.lists(requests(), min_size=1, max_size=4), st.data())
@settings(max_examples=150)
def test_framer_split_invariance(messages: list[Request], data: st.DataObject) -> None:
    """Feeding a stream whole, byte by byte, or in random pieces gives the same frames."""
    stream = b""
    for message in messages:
        stream += data.draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n"])) + message.encode()

    def frames(chunks: list[bytes]) -> list[bytes | KeepAlivePing]:
        framer = StreamFramer()
        out: list[bytes | KeepAlivePing] = []
        for chunk in chunks:
            framer.feed(chunk)
            while (frame := framer.next_frame()) is not None:
                out.append(frame)
        return out

    whole = frames([stream])
    assert [f for f in whole if isinstance(f, bytes)] == [m.encode() for m in messages]
    assert frames([stream[i : i + 1] for i in range(len(stream))]) == whole
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert frames(pieces) == whole


def test_framer_keepalive_and_errors() -> None:
    framer = StreamFramer()
    framer.feed(b"\r\n\r\n")
    assert framer.next_frame() is KEEPALIVE_PING
    framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nab")
    assert framer.next_frame() is None  # body incomplete: wait (RFC 4475 §3.1.2.2 over TCP)
    framer.feed(b"c")
    frame = framer.next_frame()
    assert isinstance(frame, bytes) and frame.endswith(b"abc")
    framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        framer.next_frame()
    big = StreamFramer(max_message=1000)
    big.feed(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 2000)
    with pytest.raises(RemoteProtocolError):
        big.next_frame()
