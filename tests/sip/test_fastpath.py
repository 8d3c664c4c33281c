"""Every parser fast path gives what the general parser gives, or both reject the same way.

The fast paths only take the shapes phones send (CRLF, no folding, single spaces, no quoted parameter
values) and hand everything else to the general parser. Here Hypothesis draws those shapes and odd but
valid neighbours (IPv6 references, parameters without values, quoted names with escapes, mixed case,
extra whitespace) plus some invalid ones, and compares the outcome with the fast path on and off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge.sip import headers as headers_module
from bridge.sip import uri as uri_module
from bridge.sip.errors import RemoteProtocolError
from bridge.sip.headers import (
    _VIA_FAST_RE,
    _VIA_RE,
    Headers,
    _parse_cseq_general,
    display_name,
    parse_cseq,
    parse_via,
)
from bridge.sip.message import Message, Request, _call_id
from bridge.sip.parser import _parse_head, _parse_head_fast, parse_message
from bridge.sip.uri import (
    _NAME_ADDR_FAST_RE,
    _NAME_ADDR_RE,
    _SIMPLE_PARAMS_RE,
    _parse_params_general,
    parse_name_addr,
    parse_params,
    split_simple_params,
)

_NEVER = re.compile(r"(?!)")


@contextmanager
def _general_only(module: Any, name: str) -> Iterator[None]:
    """Switch one fast-path regex off, so that the same call runs the general parser only."""
    saved = getattr(module, name)
    setattr(module, name, _NEVER)
    try:
        yield
    finally:
        setattr(module, name, saved)


def _outcome(parse: Callable[[Any], object], arg: object) -> tuple[object, ...]:
    try:
        return ("ok", parse(arg))
    except RemoteProtocolError as exc:
        return ("error", str(exc), exc.status_hint)


# -- building blocks ----------------------------------------------------------------------------
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
_token = st.text(alphabet=_TOKEN_CHARS, min_size=1, max_size=8)
_sws = st.sampled_from(["", "", "", " ", "  ", "\t", " \t "])
_host = st.sampled_from(
    [
        "192.0.2.10",
        "Example.COM",
        "a_b.example.org",
        "bridge.example.com",
        "[2001:db8::1]",
        "[::1]",
        "[2001:DB8::a:1]",
        "[::ffff:192.0.2.1]",
    ]
)
_quoted = st.text(alphabet='ab \\"é,;<>=', max_size=8).map(
    lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
)
_param_value = st.one_of(
    _token,
    _host,
    _quoted,
    st.sampled_from(["", "z9hG4bK776asdhds", "a=b", "x,y", 'x"y', "a\u00a0b", "é", "5060"]),
)


@st.composite
def _param(draw: st.DrawFn) -> str:
    name = draw(st.one_of(_token, st.sampled_from(["branch", "Branch", "rport", "tag", "", "a b"])))
    text = f"{draw(_sws)};{draw(_sws)}{name}"
    if draw(st.booleans()):
        text += f"{draw(_sws)}={draw(_sws)}{draw(_param_value)}"
    return text


# Only the shape the fast path takes: it must actually run, not just agree by falling back.
_simple_params = st.lists(
    st.tuples(_token, st.none() | _token | _host.filter(lambda h: ":" not in h)).map(
        lambda p: f";{p[0]}" if p[1] is None else f";{p[0]}={p[1]}"
    ),
    min_size=1,
    max_size=4,
).map("".join)
_params = st.one_of(_simple_params, st.lists(_param(), max_size=4).map("".join))


# -- generic-param lists (uri.parse_params) -------------------------------------------------------
@given(_params)
@settings(max_examples=150)
@example(";branch=z9hG4bK1;rport")
@example(";a=")
@example(";=a")
@example(";a;;b")
def test_params_fast_path_matches_general(text: str) -> None:
    assert _outcome(parse_params, text) == _outcome(_parse_params_general, text)


@given(_simple_params)
@settings(max_examples=100)
def test_params_fast_path_takes_the_common_shape(text: str) -> None:
    assert _SIMPLE_PARAMS_RE.match(text) is not None
    assert parse_params(text) == split_simple_params(text) == _parse_params_general(text)


# -- Via (headers.parse_via) ----------------------------------------------------------------------
@st.composite
def _vias(draw: st.DrawFn) -> str:
    if draw(st.booleans()):  # as phones send it
        text = f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS', 'WS']))} {draw(_host)}"
    else:
        protocol = draw(st.sampled_from(["SIP", "sip", "Sip"]))
        version = draw(st.sampled_from(["2.0", "2.0", "2.1"]))
        transport = draw(st.sampled_from(["UDP", "udp", "TCP", "SCTP", "Tcp", "U-DP"]))
        slash1 = draw(st.sampled_from(["/", "/", " / ", "/ "]))
        slash2 = draw(st.sampled_from(["/", " /"]))
        gap = draw(st.sampled_from([" ", " ", "  ", "\t", ""]))
        text = f"{draw(_sws)}{protocol}{slash1}{version}{slash2}{transport}{gap}{draw(_host)}"
    port = draw(st.none() | st.integers(0, 70000) | st.sampled_from(["5060", "05060", "", "x"]))
    if port is not None:
        text += f"{draw(st.sampled_from([':', ':', ' : ']))}{port}"
    return text + draw(_params) + draw(st.sampled_from(["", "", " "]))


@given(_vias())
@settings(max_examples=150)
@example("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport")
@example("SIP/2.0/UDP [2001:db8::1]:5061;branch=z9hG4bK1;received=192.0.2.1")
@example("SIP/2.0/UDP host:99999;branch=z9hG4bK1")
@example("SIP/2.0/UDP host;branch")
def test_via_fast_path_matches_general(text: str) -> None:
    fast = _VIA_FAST_RE.match(text)
    if fast is not None:
        # The rest of parse_via is shared, so equal groups mean equal results.
        general = _VIA_RE.match(text)
        assert general is not None
        assert fast.groupdict() == general.groupdict()
    with _general_only(headers_module, "_VIA_FAST_RE"):
        expected = _outcome(parse_via, text)
    assert _outcome(parse_via, text) == expected


# -- name-addr (uri.parse_name_addr) --------------------------------------------------------------
_uri = st.builds(
    lambda scheme, user, host, port, params: f"{scheme}:{user}{host}{port}{params}",
    st.sampled_from(["sip", "SIP", "sips", "tel"]),
    st.sampled_from(["", "alice@", "Bob.Smith@", "a%20b@", "user:pw@", "a b@"]),
    _host,
    st.sampled_from(["", ":5060", ":0", ":x"]),
    st.sampled_from(["", ";transport=tcp", ";lr", ";maddr=[::1]", "?subject=hi"]),
)
# Unbalanced quotes and stray backslashes too: "a\" <sip:x> holds no closing quote.
_raw_quoted = st.text(alphabet='a \\"', max_size=5).map(lambda s: f'"{s}" ')
_display = st.one_of(
    st.just(""),
    _quoted.map(lambda q: q + " "),
    _quoted,
    _raw_quoted,
    st.sampled_from(['"Alice Phone" ', "Bob ", "Bob  Smith ", "Bob\t", '"" ', '"a\\\\" ']),
)


@st.composite
def _name_addrs(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 5)) == 0:  # addr-spec form, no <>
        return f"{draw(_sws)}{draw(_uri)}{draw(_params)}"
    lead = draw(st.sampled_from(["", "", " "]))
    return f"{lead}{draw(_display)}<{draw(_uri)}>{draw(_params)}{draw(_sws)}"


@given(_name_addrs())
@settings(max_examples=150)
@example('"Alice Phone" <sip:alice@192.0.2.10>;tag=1928301774')
@example('"Watson, \\"Tom\\"" <sip:t@example.org>;tag=9')
@example("<sip:demo@bridge.example.com>")
@example("Bob <sip:bob@[2001:db8::1]:5060>;tag=x;expires")
@example('"a\\" <sip:x@y>')
def test_name_addr_fast_path_matches_general(text: str) -> None:
    fast = _NAME_ADDR_FAST_RE.match(text)
    if fast is not None:
        general = _NAME_ADDR_RE.match(text)
        assert general is not None
        assert fast.groups() == general.groups()
    with _general_only(uri_module, "_NAME_ADDR_FAST_RE"):
        expected = _outcome(parse_name_addr, text)
    assert _outcome(parse_name_addr, text) == expected


# -- CSeq (headers.parse_cseq) --------------------------------------------------------------------
@given(
    _sws,
    st.one_of(
        st.integers(0, 2**32).map(str),
        st.sampled_from(["", "007", "12345678901", "123456789012", "١٢", "²", "-1"]),
    ),
    st.sampled_from([" ", " ", "  ", "\t", ""]),
    st.sampled_from(["INVITE", "ACK", "BYE", "invite", "FOO", "Bye", "", "IN VITE"]),
    _sws,
)
@settings(max_examples=200)
def test_cseq_fast_path_matches_general(
    lead: str, seq: str, gap: str, method: str, end: str
) -> None:
    text = f"{lead}{seq}{gap}{method}{end}"
    assert _outcome(parse_cseq, text) == _outcome(_parse_cseq_general, text)


# -- the header block (parser._parse_head_fast) ---------------------------------------------------
def _summary(message: Message | None) -> tuple[object, ...] | None:
    if message is None:
        return None
    start = (message.method, message.raw_uri) if isinstance(message, Request) else message
    if not isinstance(start, tuple):
        start = (start.status, start.reason)  # type: ignore[attr-defined]
    return (type(message).__name__, start, list(message.headers))


def _head_outcome(parse: Callable[[bytes], object], data: bytes) -> tuple[object, ...]:
    try:
        result = parse(data)
    except RemoteProtocolError as exc:
        partial = exc.partial
        assert partial is None or isinstance(partial, Message)
        return ("error", str(exc), exc.status_hint, _summary(partial))
    if result is None:
        return ("fallback",)
    assert isinstance(result, tuple)
    message, body = result
    return ("ok", _summary(message), body)


_start_line = st.one_of(
    st.builds(
        lambda m, u: f"{m} {u} SIP/2.0",
        st.sampled_from(["INVITE", "OPTIONS", "NEWMETHOD", "invite"]),
        st.sampled_from(["sip:demo@bridge.example.com", "sip:[::1]:5060", "tel:+1"]),
    ),
    st.sampled_from(["SIP/2.0 200 OK", "SIP/2.0 180 Ringing", "sip/2.0 100 trying"]),
)
_odd_start_line = st.sampled_from(
    [
        *("INVITE  sip:a@b SIP/2.0", "OPTIONS sip:a@b SIP/2.0 ", "IN@VITE sip:a@b SIP/2.0"),
        *("INVITE sip:a@b SIP/7.0", "INVITE sip:a@b HTTP/1.1", "INVITE  SIP/2.0", "SIP/2.0 20 OK"),
        *("SIP/3.0 200 OK", ""),
    ]
)
_name = st.one_of(
    st.sampled_from(
        [
            *("Via", "v", "From", "f", "To", "t", "CALL-ID", "i", "CSeq", "Content-Length", "l"),
            *(
                "spacesVersion",
                "X-Custom",
                "Max-Forwards",
                "Via ",
                "Bad Name",
                "",
                "X@Y",
                "Caf\u00e9",
            ),
        ]
    ),
    _token,  # names never seen before: the cache misses
)
_field_value = st.one_of(
    _vias(), _name_addrs(), _token, st.sampled_from(["", "a:b", "x\r", "70", "1", "é\udcff"])
)


@st.composite
def _heads(draw: st.DrawFn) -> bytes:
    # Odd shapes one time in ten, so that most heads stay on the fast path and some leave it.
    odd = st.integers(0, 9).map(lambda n: n == 0)
    lines = [draw(_odd_start_line if draw(odd) else _start_line)]
    for _ in range(draw(st.integers(0, 6))):
        fold = draw(st.sampled_from([" ", "\t"])) if draw(odd) else ""  # a continuation line
        colon = draw(st.sampled_from(["", " :", "\t: "])) if draw(odd) else ":"
        lines.append(
            f"{fold}{draw(_name)}{colon}{draw(st.sampled_from(['', ' ']))}{draw(_field_value)}"
        )
    head = "".join(line + ("\n" if draw(odd) else "\r\n") for line in lines)
    end = "\n" if draw(odd) else "\r\n"
    body = draw(st.sampled_from([b"", b"v=0\r\n", b"\r\n\r\nx"]))
    return head.encode("utf-8", "surrogateescape") + end.encode() + body


@given(_heads())
@settings(max_examples=200)
@example(b"OPTIONS sip:a@b SIP/2.0\r\nFoo\r\n : bar\r\nVia: x\r\n\r\n")  # a fold supplies the colon
@example(b"OPTIONS sip:a@b SIP/2.0\r\n Via: x\r\n\r\n")  # a fold right after the start line
@example(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\n\r\n\r\n")  # a bare LF ends the head first
@example(b"OPTIONS sip:a@b SIP/2.0\r\nNew-Name: 1\r\nBad Name: 2\r\n\r\n")
def test_head_fast_path_matches_general(data: bytes) -> None:
    fast = _head_outcome(_parse_head_fast, data)
    if fast != ("fallback",):
        assert fast == _head_outcome(_parse_head, data)


def test_head_fast_path_takes_a_typical_invite() -> None:
    data = (
        b"INVITE sip:demo@bridge.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
        b'From: "Alice Phone" <sip:alice@192.0.2.10>;tag=1928301774\r\n'
        b"To: <sip:demo@bridge.example.com>\r\nCall-ID: a84b4c76e66710@192.0.2.10\r\n"
        b"CSeq: 314159 INVITE\r\nNever-Seen-Before: 1\r\nContent-Length: 0\r\n\r\n"
    )
    assert _parse_head_fast(data) is not None
    m = parse_message(data)
    assert _VIA_FAST_RE.match(m.headers.get("via") or "") is not None
    assert _NAME_ADDR_FAST_RE.match(m.headers.get("from") or "") is not None
    assert _SIMPLE_PARAMS_RE.match(";branch=z9hG4bK776asdhds;rport") is not None
    assert m.cseq == _parse_cseq_general("314159 INVITE")


# -- single-valued views (Headers.typed_single) ---------------------------------------------------
def _single_by_get_all(headers: Headers, key: str) -> str:
    """What the views did before typed_single: look the field up with get_all."""
    values = headers.get_all(key)
    if not values:
        raise RemoteProtocolError(f"missing {display_name(key)} header")
    if len(values) > 1:
        raise RemoteProtocolError(f"more than one {display_name(key)} header")
    return values[0]


@given(
    st.lists(
        st.tuples(st.sampled_from(["From", "f", "To", "Call-ID", "CSeq", "Via", "X-A"]), _token),
        max_size=6,
    ),
    st.sampled_from(["from", "to", "call-id", "cseq"]),
)
@settings(max_examples=100)
def test_typed_single_matches_get_all(fields: list[tuple[str, str]], key: str) -> None:
    headers = Headers.of(*fields)
    assert _outcome(lambda k: headers.typed_single(k, str), key) == _outcome(
        lambda k: _single_by_get_all(headers, k), key
    )


# -- Call-ID (message._call_id) -------------------------------------------------------------------
_WS_RE = re.compile(r"\s")


@given(st.text(alphabet="ab@.\x00 \t\r\n\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\udcff", max_size=6))
@settings(max_examples=150)
@example("a84b4c76e66710@192.0.2.10")
@example("")
def test_call_id_check_matches_the_regex(value: str) -> None:
    bad = not value or _WS_RE.search(value) is not None
    assert _outcome(_call_id, value) == (
        ("error", f"malformed Call-ID {value!r}", 400) if bad else ("ok", value)
    )
