"""URIs, name-addr values and header parameters (RFC 3261 §19.1, §20, §25.1).

Every value is a frozen dataclass; parsing is strict where RFC 4475 says a receiver should reject, and
liberal where it says a receiver should accept (LWS around ``;`` and ``=``, no LWS before ``<``).
Escapes in the user part are undone once, never recursively (RFC 4475 §3.1.1.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .errors import LocalProtocolError, RemoteProtocolError

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")  (RFC 3261 §25.1)
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )  (RFC 3986 §3.1, used by RFC 3261 absoluteURI)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
# host = hostname / IPv4address / IPv6reference  (RFC 3261 §25.1); "_" tolerated as many stacks do.
_HOST_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_\-.]+)\Z")
# user-unreserved and unreserved characters pass unescaped; everything else is %HH (RFC 3261 §25.1).
_USER_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/"
)
_PARAM_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()[]/:&+$"
)
_HEX = frozenset("0123456789abcdefABCDEF")
_WS_OR_ANGLE_RE = re.compile(r"[\s<>]")
_T = r"[A-Za-z0-9\-.!%*_+`'~]"
# generic-param = token [ EQUAL gen-value ]; gen-value = token / host / quoted-string (§25.1), with the
# SWS that SEMI and EQUAL allow. One regex validates the whole list, one findall extracts it: no
# Python loop per character.
_PARAM = rf'\s*;\s*({_T}+)(?:\s*=\s*([^\s;",]+|"(?:[^"\\]|\\.)*"))?'
_PARAMS_RE = re.compile(rf"(?:{_PARAM})*\s*\Z", re.S)
_PARAM_FIND_RE = re.compile(_PARAM, re.S)
# Fast path: the shape nearly every list has, no SWS and no quoted value (";branch=z9hG4bK1;rport").
# On text this matches, splitting on ";" and "=" gives exactly what _PARAM_FIND_RE finds, for a third
# of the cost. Each repetition starts with ";", which no token or value holds: no backtracking. The Via
# and name-addr fast paths embed it, so that one regex call checks the whole value.
SIMPLE_PARAMS = rf'(?:;{_T}+(?:=[^\s;",]+)?)+'
_SIMPLE_PARAMS_RE = re.compile(rf"{SIMPLE_PARAMS}\Z")
# name-addr with a quoted or token display name, or none: [ display-name ] LAQUOT addr-spec RAQUOT
_NAME_ADDR_RE = re.compile(rf'\s*(?:"((?:[^"\\]|\\.)*)"\s*|((?:{_T}+\s*)*?))<([^<>]*)>(.*)\Z', re.S)
# Fast path: the common shapes "Name" <uri>, Name <uri> and <uri>, with the groups of _NAME_ADDR_RE. On
# text this matches, _NAME_ADDR_RE matches with the same groups; it avoids the per-character alternation
# that escapes in quoted strings need, and takes only simple header parameters (split, not re-matched).
_NAME_ADDR_FAST_RE = re.compile(rf'(?:"([^"\\]*)" ?|((?:{_T}+ )?))<([^<>]*)>({SIMPLE_PARAMS}|)\Z')
_UNQUOTE_RE = re.compile(r"\\(.)", re.S)

Params = tuple[tuple[str, str | None], ...]


def is_token(text: str) -> bool:
    return _TOKEN_RE.match(text) is not None


def unescape(text: str) -> str:
    """Undo %HH escapes once (RFC 3261 §19.1.2); a lone ``%`` is an error."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        byte = raw[i]
        if byte == 0x25:  # "%"
            pair = raw[i + 1 : i + 3].decode("ascii", "replace")
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise RemoteProtocolError(f"bad %-escape in {text!r}")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(byte)
            i += 1
    return out.decode("utf-8", "surrogateescape")


def escape(text: str, safe: frozenset[str] = _USER_SAFE) -> str:
    if all(c in safe for c in text):
        return text
    return "".join(
        c if c in safe else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
        for c in text
    )


def find_unquoted(text: str, chars: str, start: int = 0) -> int:
    """Index of the first of ``chars`` outside a quoted string and outside ``<...>``, or -1."""
    quoted = False
    angle = False
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif not angle and c in chars:
            return i
        i += 1
    return -1


def split_commas(value: str) -> list[str]:
    """Split a header value on the commas that separate values (RFC 3261 §7.3.1).

    Commas inside quoted strings and ``<...>`` do not separate. Empty elements are kept so that the
    typed parsers can reject them (RFC 4475 §3.1.2.1 "extraneous header field separators").
    """
    if "," not in value:
        return [value]
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",")]
    parts = []
    start = 0
    while True:
        idx = find_unquoted(value, ",", start)
        if idx < 0:
            parts.append(value[start:].strip())
            return parts
        parts.append(value[start:idx].strip())
        start = idx + 1


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str) -> Params:
    """Parse ``*( SEMI generic-param )``; ``text`` is empty or starts with ``;`` (after SWS).

    Names are lower-cased: they compare case-insensitively (RFC 3261 §19.1.4). Quoted values are kept
    with their quotes, as they appear on the wire.
    """
    if not text:
        return ()
    if _SIMPLE_PARAMS_RE.match(text) is not None:
        return split_simple_params(text)
    return _parse_params_general(text)


def split_simple_params(text: str) -> Params:
    """:func:`parse_params` of text that matched :data:`SIMPLE_PARAMS`, or is empty."""
    if not text:
        return ()
    params = []
    for item in text[1:].split(";"):
        name, _, value = item.partition("=")
        params.append((name.lower(), value or None))  # the pattern allows no empty value
    return tuple(params)


def _parse_params_general(text: str) -> Params:
    if not text or text.isspace():
        return ()
    if _PARAMS_RE.match(text) is None:
        raise RemoteProtocolError(f"empty or malformed parameter in {text[:60]!r}")
    return tuple((name.lower(), value or None) for name, value in _PARAM_FIND_RE.findall(text))


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def param_value(params: Params, name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


def has_param(params: Params, name: str) -> bool:
    return any(key == name for key, _ in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    kept = tuple(p for p in params if p[0] != name)
    return (*kept, (name, value))


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1). ``user`` is unescaped; ``host`` lower-cased."""

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        return param_value(self.params, name)

    def has_param(self, name: str) -> bool:
        return has_param(self.params, name)

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None

    def with_params(self, params: Params) -> SipUri:
        return replace(self, params=params)

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(escape(self.user))
            if self.password is not None:
                parts.append(":" + escape(self.password))
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        parts.append(format_params(self.params))
        if self.headers:
            parts.append(
                "?"
                + "&".join(
                    f"{escape(k, _PARAM_SAFE)}={escape(v, _PARAM_SAFE)}" for k, v in self.headers
                )
            )
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme (``tel:``, ``urn:``, unknown ones): kept opaque so that a UAS can answer 416."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | AbsoluteUri


#: Parsed URIs by their text. The same URIs recur in every request of a call and across calls (the
#: bridge's own address, each phone's AOR and Contact), and values are immutable, so sharing is safe.
#: Bounded: cleared when full, since peers choose the text.
_URI_CACHE: dict[str, Uri] = {}
_URI_CACHE_SIZE = 8192


def parse_uri(text: str) -> Uri:
    """Parse a Request-URI or the URI inside ``<...>``. Whitespace anywhere is an error (RFC 4475
    §3.1.2.8 and §3.1.2.14)."""
    uri = _URI_CACHE.get(text)
    if uri is None:
        uri = _parse_uri(text)
        if len(_URI_CACHE) >= _URI_CACHE_SIZE:
            _URI_CACHE.clear()
        _URI_CACHE[text] = uri
    return uri


def _parse_uri(text: str) -> Uri:
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.match(scheme) or not rest:
        raise RemoteProtocolError(f"malformed URI {text!r}")
    if _WS_OR_ANGLE_RE.search(text) is not None:
        raise RemoteProtocolError(f"whitespace or angle bracket in URI {text!r}")
    lowered = scheme.lower()
    if lowered not in ("sip", "sips"):
        return AbsoluteUri(lowered, rest)
    # "@" cannot appear unescaped after the host (params and headers exclude it), while the user part
    # may hold "?", ";" and "/" (RFC 4475 §3.1.1.2, §3.1.1.9): split userinfo off first.
    user = password = None
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        raw_user, _, raw_password = userinfo.partition(":")
        user = unescape(raw_user)
        password = unescape(raw_password) if ":" in userinfo else None
    rest, _, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    host, port = _split_hostport(hostport, text)
    params = parse_params(";" + param_text) if semi else ()
    headers: tuple[tuple[str, str], ...] = ()
    if header_text:
        pairs = []
        for item in header_text.split("&"):
            name, _, value = item.partition("=")
            if not name:
                raise RemoteProtocolError(f"empty URI header in {text!r}")
            pairs.append((unescape(name), unescape(value)))
        headers = tuple(pairs)
    return SipUri(lowered, host, user, password, port, params, headers)


def _split_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        close = hostport.find("]")
        host, port_text = hostport[: close + 1], hostport[close + 1 :]
        if close < 0 or (port_text and not port_text.startswith(":")):
            raise RemoteProtocolError(f"malformed IPv6 reference in {text!r}")
        port_text = port_text[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not host or not _HOST_RE.match(host):
        raise RemoteProtocolError(f"malformed host in {text!r}")
    port = None
    if port_text or hostport.endswith(":"):
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            raise RemoteProtocolError(f"malformed port in {text!r}")
        port = int(port_text)
    return host.lower(), port


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``( name-addr / addr-spec ) *( SEMI param )`` as in From, To, Contact, Route (RFC 3261 §20)."""

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return param_value(self.params, "tag")

    def param(self, name: str) -> str | None:
        return param_value(self.params, name)

    def with_tag(self, tag: str) -> NameAddr:
        if self.tag is not None:
            raise LocalProtocolError("name-addr already has a tag")
        return replace(self, params=(*self.params, ("tag", tag)))

    def __str__(self) -> str:
        # Always use the <...> form: an addr-spec with URI parameters would change meaning otherwise
        # (RFC 3261 §20.10).
        name = f"{quote(self.display_name)} " if self.display_name is not None else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(text: str) -> NameAddr:
    fast = _NAME_ADDR_FAST_RE.match(text)
    match = fast or _NAME_ADDR_RE.match(text)
    if match is not None:
        quoted, words, uri_text, rest = match.groups()
        if quoted is not None:
            display: str | None = _UNQUOTE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            # display-name = *(token LWS) / quoted-string: unquoted names are tokens (§3.1.2.15)
            display = (" ".join(words.split()) or None) if words else None
        params = split_simple_params(rest) if match is fast else parse_params(rest)
        return NameAddr(parse_uri(uri_text), display, params)
    text = text.strip()
    if not text:
        raise RemoteProtocolError("empty address")
    if "<" in text or '"' in text:
        raise RemoteProtocolError(f"malformed name-addr {text[:60]!r}")
    # addr-spec form: the URI ends at the first ";" and what follows are header parameters. An
    # addr-spec holding "?" (URI headers) or "," must be enclosed in <> (§20; RFC 4475 §3.1.2.13).
    uri_text, semi, param_text = text.partition(";")
    if "?" in uri_text or "," in uri_text:
        raise RemoteProtocolError(f"URI with headers or commas must be in <> in {text[:60]!r}")
    return NameAddr(parse_uri(uri_text.strip()), None, parse_params(semi + param_text))
