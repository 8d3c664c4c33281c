"""Header names, the header container, and the typed Via and CSeq values (RFC 3261 §7.3, §20).

Headers are kept as they arrived: a list of ``(key, value)`` where ``key`` is the lower-case long form of
the name (compact forms expanded, RFC 3261 §7.3.3) and ``value`` the unfolded text. Typed views are parsed
on first use and cached until the container changes, so a UAS pays only for the headers it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from .errors import RemoteProtocolError
from .uri import (
    SIMPLE_PARAMS,
    Params,
    format_params,
    param_value,
    parse_params,
    set_param,
    split_simple_params,
)

T = TypeVar("T")

# RFC 3261 §7.3.3 and the IANA SIP parameters registry "compact form" column.
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# Lookup keys our own code passes: already lower-case long forms, no normalisation needed.
_KEYS = frozenset(
    {
        "via", "from", "to", "call-id", "cseq", "contact", "content-length", "content-type",
        "max-forwards", "route", "record-route", "require", "accept", "content-encoding",
        "allow", "supported", "user-agent", "event", "expires", "info-package",
        "recv-info", "retry-after", "reason", "authorization", "subscription-state",
    }
)  # fmt: skip

# Names whose conventional spelling is not plain Title-Case.
_DISPLAY_NAMES: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

# Headers a request may carry once only (RFC 3261 §20: no "#" in their grammar); two of them → 400
# (RFC 4475 §3.3.8).
SINGLE_VALUED = frozenset(
    {"call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type", "expires"}
)


_MISSING = object()


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact form expanded."""
    lowered = name.strip().lower()
    return COMPACT_FORMS.get(lowered, lowered)


_display_cache: dict[str, str] = {}


def display_name(key: str) -> str:
    """Conventional spelling of a header key for the wire (``call-id`` → ``Call-ID``)."""
    name = _display_cache.get(key)
    if name is None:
        name = _DISPLAY_NAMES.get(key) or "-".join(p.capitalize() for p in key.split("-"))
        if len(_display_cache) < 1024:  # bounded: peers choose header names
            _display_cache[key] = name
    return name


class Headers:
    """An ordered multi-map of header fields with cached typed views."""

    __slots__ = ("_first", "_items", "_parsed")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = items if items is not None else []
        self._parsed: dict[str, object] = {}
        self._first: dict[str, str] | None = None  # key → first value, built on first lookup

    def _index(self) -> dict[str, str]:
        first = self._first
        if first is None:
            # dict() keeps the last value of a repeated key; reversed, that is the first one.
            first = self._first = dict(reversed(self._items))
        return first

    @property
    def has_repeats(self) -> bool:
        """Whether any header name occurs more than once (cheap: no count per name)."""
        return len(self._index()) != len(self._items)

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Headers:
        return cls([(header_key(name), value) for name, value in pairs])

    def get(self, name: str) -> str | None:
        first = self._first if self._first is not None else self._index()
        value = first.get(name)
        if value is None and name not in _KEYS:
            value = first.get(header_key(name))
        return value

    def get_all(self, name: str) -> list[str]:
        """Every field line of ``name``, not split on commas."""
        key = name if name in _KEYS else header_key(name)
        first = self._first if self._first is not None else self._index()
        if key not in first:
            return []
        if len(first) == len(self._items):
            return [first[key]]
        return [v for k, v in self._items if k == key]

    def count(self, name: str) -> int:
        key = header_key(name)
        return sum(1 for k, _ in self._items if k == key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    __hash__ = None  # type: ignore[assignment]  # mutable container

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def add(self, name: str, value: str) -> None:
        self._items.append((header_key(name), value))
        self._parsed.clear()
        self._first = None

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (header_key(name), value))
        self._parsed.clear()
        self._first = None

    def set(self, name: str, value: str) -> None:
        """Replace every field of ``name`` with one, keeping the position of the first."""
        key = header_key(name)
        for i, (k, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (key, value)
                self._items[i + 1 :] = [item for item in self._items[i + 1 :] if item[0] != key]
                break
        else:
            self._items.append((key, value))
        self._parsed.clear()
        self._first = None

    def remove(self, name: str) -> None:
        key = header_key(name)
        self._items = [item for item in self._items if item[0] != key]
        self._parsed.clear()
        self._first = None

    def copy(self) -> Headers:
        return Headers(list(self._items))

    def typed_single(self, key: str, parse: Callable[[str], T]) -> T:
        """``parse`` of the one field ``key`` (a lookup key), cached like :meth:`typed`. Raises
        :class:`RemoteProtocolError` when the field is missing or repeated (RFC 4475 §3.3.8).

        One call where :meth:`typed` needs a view function and :meth:`get_all`: a UAS reads From, To,
        Call-ID and CSeq of every request, and the layers cost more than the parsing.
        """
        value = self._parsed.get(key, _MISSING)
        if value is _MISSING:
            first = self._first if self._first is not None else self._index()
            text = first.get(key)
            if text is None:
                raise RemoteProtocolError(f"missing {display_name(key)} header")
            if len(first) != len(self._items) and self.count(key) > 1:
                raise RemoteProtocolError(f"more than one {display_name(key)} header")
            value = self._parsed[key] = parse(text)
        return value  # type: ignore[return-value]

    def typed(self, key: str, parse: Callable[[Headers], T]) -> T:
        """``parse(self)`` cached until the next change; ``key`` names the view."""
        value = self._parsed.get(key, _MISSING)
        if value is _MISSING:
            value = self._parsed[key] = parse(self)
        return value  # type: ignore[return-value]


#: Methods of RFC 3261 and of the extensions a UA meets, in the order an Allow header lists them:
#: RFC 3261's own, then the extensions by RFC (INFO 2976, PRACK 3262, SUBSCRIBE and NOTIFY 3265,
#: UPDATE 3311, MESSAGE 3428, REFER 3515, PUBLISH 3903).
METHODS = (
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK", "SUBSCRIBE", "NOTIFY",
    "UPDATE", "MESSAGE", "REFER", "PUBLISH",
)  # fmt: skip
#: Known tokens: the parser's hot path takes them without the token check (Method = INVITEm / ACKm /
#: ... / extension-method, §25.1), and a UAS answers a method outside them 501, a known one it does
#: not serve 405 with Allow (§8.2.1; RFC 4475 §3.1.1.5).
KNOWN_METHODS = frozenset(METHODS)


# Via = ( "Via" / "v" ) HCOLON via-parm *(COMMA via-parm)
# via-parm = sent-protocol LWS sent-by *( SEMI via-params ); sent-protocol = protocol-name SLASH
# protocol-version SLASH transport; sent-by = host [ COLON port ]; SLASH and COLON allow SWS (§25.1).
_VIA_RE = re.compile(
    r"""\s*(?P<name>[A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*(?P<version>[A-Za-z0-9\-.!%*_+`'~]+)
    \s*/\s*(?P<transport>[A-Za-z0-9\-.!%*_+`'~]+)
    \s+(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_\-.]+)(?:\s*:\s*(?P<port>[0-9]{1,5}))?
    \s*(?P<params>;.*)?\Z""",
    re.X | re.S,
)
# Fast path: "SIP/2.0/UDP host[:port][;params]" with single spaces, as phones send it, with the groups of
# _VIA_RE. On text this matches, _VIA_RE matches with the same groups; this one skips the SWS
# alternatives, which cost more than the match itself, and admits only simple parameters, which are
# then split without a second regex.
_VIA_FAST_RE = re.compile(
    r"(?P<name>SIP)/(?P<version>2\.0)/(?P<transport>[A-Z]+) (?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_\-.]+)"
    rf"(?::(?P<port>[0-9]{{1,5}}))?(?P<params>{SIMPLE_PARAMS})?\Z"
)


@dataclass(frozen=True, slots=True)
class Via:
    """One via-parm. ``transport`` upper-cased, ``host`` lower-cased."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return param_value(self.params, "branch")

    @property
    def received(self) -> str | None:
        return param_value(self.params, "received")

    @property
    def rport(self) -> int | None:
        """The ``rport`` value the previous hop filled in (RFC 3581), else None."""
        value = param_value(self.params, "rport")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def wants_rport(self) -> bool:
        return any(k == "rport" for k, _ in self.params)

    @property
    def maddr(self) -> str | None:
        return param_value(self.params, "maddr")

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=set_param(self.params, name, value))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    match = _VIA_FAST_RE.match(text) or _VIA_RE.match(text)
    if match is None:
        raise RemoteProtocolError(f"malformed Via {text!r}")
    name, version, transport, host, port_text, param_text = match.groups()
    port = int(port_text) if port_text is not None else None
    if port is not None and not 0 < port <= 65535:
        raise RemoteProtocolError(f"Via port out of range in {text!r}")
    if match.re is _VIA_FAST_RE:
        params = split_simple_params(param_text or "")
    else:
        params = parse_params(param_text or "")
    for key, value in params:
        if not value and key in ("branch", "received", "maddr"):
            raise RemoteProtocolError(f"Via {key} parameter without a value")
    return Via(transport.upper(), host.lower(), port, params, f"{name.upper()}/{version}")


MAX_CSEQ = 2**31 - 1  # "MUST be less than 2**31" (RFC 3261 §8.1.1.5)


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_CSEQ_RE = re.compile(r"\s*([0-9]{1,12})\s+([A-Za-z0-9\-.!%*_+`'~]+)\s*\Z")


def parse_cseq(text: str) -> CSeq:
    # CSeq = "CSeq" HCOLON 1*DIGIT LWS Method  (RFC 3261 §20.16)
    # Fast path: "314159 INVITE", one SP and a known method; anything else takes the regex.
    seq, _, method = text.partition(" ")
    if method in KNOWN_METHODS and 0 < len(seq) <= 10 and seq.isdigit() and seq.isascii():
        number = int(seq)
        if number <= MAX_CSEQ:
            return CSeq(number, method)
    return _parse_cseq_general(text)


def _parse_cseq_general(text: str) -> CSeq:
    match = _CSEQ_RE.match(text)
    if match is None:
        raise RemoteProtocolError(f"malformed CSeq {text!r}")
    seq = int(match[1])
    if seq > MAX_CSEQ:
        raise RemoteProtocolError(f"CSeq number {seq} exceeds 2**31-1")
    return CSeq(seq, match[2])
