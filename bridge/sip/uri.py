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
_USER_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/")
_PARAM_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()[]/:&+$")
_HEX = frozenset("0123456789abcdefABCDEF")

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
    parts = []
    start = 0
    while True:
        idx = find_unquoted(value, ",", start)
        if idx < 0:
            parts.append(value[start:].strip())
            return parts
        parts.append(value[start:idx].strip())
        start = idx + 1


def parse_quoted(text: str, start: int) -> tuple[str, int]:
    """Parse ``quoted-string`` at ``text[start] == '"'``; return (unescaped content, index after)."""
    # quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE ; quoted-pair = "\" (%x00-09 / %x0B-0C
    # / %x0E-7F)   (RFC 3261 §25.1)
    out = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise RemoteProtocolError("unterminated quoted string")


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str) -> Params:
    """Parse ``*( SEMI generic-param )``; ``text`` is empty or starts with ``;``.

    generic-param = token [ EQUAL gen-value ]; gen-value = token / host / quoted-string; SEMI and EQUAL
    allow SWS on both sides (RFC 3261 §25.1). Names are lower-cased: they compare case-insensitively.
    """
    text = text.strip()
    if not text:
        return ()
    if text[0] != ";":
        raise RemoteProtocolError(f"expected ';' before parameters in {text!r}")
    params: list[tuple[str, str | None]] = []
    pos = 1
    while True:
        end = find_unquoted(text, ";", pos)
        piece = (text[pos:] if end < 0 else text[pos:end]).strip()
        name, eq, value = piece.partition("=")
        name = name.strip()
        if not name or not is_token(name):
            raise RemoteProtocolError(f"empty or malformed parameter in {text!r}")
        if eq:
            value = value.strip()
            if value.startswith('"'):
                inner, after = parse_quoted(value, 0)
                if after != len(value):
                    raise RemoteProtocolError(f"junk after quoted parameter in {text!r}")
                value = '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'
            elif not value or any(c.isspace() for c in value):
                raise RemoteProtocolError(f"malformed value of parameter {name!r}")
            params.append((name.lower(), value))
        else:
            params.append((name.lower(), None))
        if end < 0:
            return tuple(params)
        pos = end + 1


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
                "?" + "&".join(f"{escape(k, _PARAM_SAFE)}={escape(v, _PARAM_SAFE)}" for k, v in self.headers)
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


def parse_uri(text: str) -> Uri:
    """Parse a Request-URI or the URI inside ``<...>``. Whitespace anywhere is an error (RFC 4475
    §3.1.2.8 and §3.1.2.14)."""
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.match(scheme) or not rest:
        raise RemoteProtocolError(f"malformed URI {text!r}")
    if any(c.isspace() for c in text) or "<" in text or ">" in text:
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
    text = text.strip()
    if not text:
        raise RemoteProtocolError("empty address")
    display: str | None = None
    if text.startswith('"'):
        display, pos = parse_quoted(text, 0)
        open_ = text.find("<", pos)
        if open_ < 0 or text[pos:open_].strip():
            raise RemoteProtocolError(f"expected <URI> after display name in {text!r}")
    else:
        open_ = find_unquoted_angle(text)
        if open_ >= 0:
            words = text[:open_].split()
            # display-name = *(token LWS) / quoted-string: unquoted names are tokens only (§3.1.2.15)
            if any(not is_token(w) for w in words):
                raise RemoteProtocolError(f"display name must be tokens or quoted in {text!r}")
            display = " ".join(words) or None
    if open_ >= 0:
        close = text.find(">", open_)
        if close < 0:
            raise RemoteProtocolError(f"unterminated <URI> in {text!r}")
        uri = parse_uri(text[open_ + 1 : close])
        params = parse_params(text[close + 1 :])
    else:
        # addr-spec form: the URI ends at the first ";" and what follows are header parameters. An
        # addr-spec holding "?" (URI headers) must be enclosed in <> (RFC 3261 §20; RFC 4475 §3.1.2.13).
        semi = text.find(";")
        uri_text = text if semi < 0 else text[:semi]
        if "?" in uri_text or "," in uri_text:
            raise RemoteProtocolError(f"URI with headers or commas must be in <> in {text!r}")
        uri = parse_uri(uri_text.strip())
        params = parse_params(text[semi:]) if semi >= 0 else ()
    return NameAddr(uri, display, params)


def find_unquoted_angle(text: str) -> int:
    quoted = False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif c == "<" and not quoted:
            return i
    return -1
