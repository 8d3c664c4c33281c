"""Digest authentication for the UAS side (RFC 3261 §22, RFC 8760: SHA-256 and MD5, ``qop=auth``).

Sans-IO: the caller passes the time. Nonces are stateless to issue (a timestamp and random bytes,
signed with a key of the process) and stateful only for replay protection: each nonce accepts
strictly increasing nonce-counts until it expires, in a table bounded by ``max_nonces``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .uri import find_unquoted

#: Offered in this order (RFC 8760 §2.4: the preferred algorithm first).
ALGORITHMS = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}
_MAX_HEADER = 2048


@dataclass(frozen=True, slots=True)
class Credentials:
    """A verified caller."""

    username: str


class AuthFailure(Exception):  # noqa: N818 (an outcome, answered with a status)
    """Not authenticated: answer 401 with fresh challenges (``stale``: only the nonce expired), or
    403 when ``forbidden`` (a known nonce replayed, a wrong realm)."""

    def __init__(self, reason: str, *, stale: bool = False, forbidden: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stale = stale
        self.forbidden = forbidden


def parse_authorization(value: str) -> dict[str, str]:
    """``Digest k=v, k="v", …`` → lower-cased keys and unquoted values; ValueError otherwise."""
    if len(value) > _MAX_HEADER:
        raise ValueError("Authorization header too long")
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError("not a Digest credential")
    params: dict[str, str] = {}
    start = 0
    while start < len(rest):
        end = find_unquoted(rest, ",", start)
        end = len(rest) if end < 0 else end
        item = rest[start:end].strip()
        start = end + 1
        if not item:
            continue
        key, eq, raw = item.partition("=")
        if not eq:
            raise ValueError(f"malformed parameter {item[:40]!r}")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[key.strip().lower()] = raw
    return params


class DigestAuthenticator:
    def __init__(
        self,
        realm: str,
        passwords: Mapping[str, str],
        *,
        nonce_lifetime: float = 300.0,
        max_nonces: int = 100_000,
        key: bytes | None = None,
        token: Callable[[int], bytes] = secrets.token_bytes,
        algorithms: tuple[str, ...] = tuple(ALGORITHMS),
    ) -> None:
        unknown = set(algorithms) - set(ALGORITHMS)
        if unknown or not algorithms:
            raise ValueError(f"algorithms must be among {list(ALGORITHMS)}")
        self.algorithms = algorithms
        self.realm = realm
        self._passwords = passwords
        self._lifetime = nonce_lifetime
        self._key = key or secrets.token_bytes(32)
        self._token = token
        self._max = max_nonces
        self._counts: OrderedDict[str, int] = OrderedDict()  # nonce → last nonce-count seen

    # -- challenges ----------------------------------------------------------------------------------
    def challenges(self, now: float, *, stale: bool = False) -> tuple[str, ...]:
        """``WWW-Authenticate`` values: one per algorithm, preferred first (RFC 8760 §2.4: a client
        uses the topmost it supports; some old ones only ever read the first)."""
        nonce = self._nonce(now)
        extra = ", stale=true" if stale else ""
        return tuple(
            f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={name}, qop="auth"{extra}'
            for name in self.algorithms
        )

    def _nonce(self, now: float) -> str:
        body = struct.pack(">d", now) + self._token(12)
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(body + mac).decode()

    def _issued_at(self, nonce: str) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce.encode())
        except ValueError:
            return None
        if len(raw) != 32:
            return None
        body, mac = raw[:20], raw[20:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:12]):
            return None
        issued: float = struct.unpack(">d", body[:8])[0]
        return issued

    # -- verification --------------------------------------------------------------------------------
    def verify(self, authorization: str, method: str, now: float) -> Credentials:
        """Check one ``Authorization`` value for a request of ``method``; raises AuthFailure."""
        try:
            p = parse_authorization(authorization)
        except ValueError as exc:
            raise AuthFailure(str(exc)) from None
        username, nonce, uri, response = (
            p.get(k) for k in ("username", "nonce", "uri", "response")
        )
        if not (username and nonce and uri and response):
            raise AuthFailure("incomplete credentials")
        if p.get("realm") != self.realm:
            raise AuthFailure("wrong realm")
        hash_name = p.get("algorithm", "MD5").upper()
        if hash_name not in self.algorithms:
            raise AuthFailure(f"unsupported algorithm {hash_name[:20]!r}")
        issued = self._issued_at(nonce)
        if issued is None:
            raise AuthFailure("unknown nonce")
        if not 0 <= now - issued <= self._lifetime:
            raise AuthFailure("nonce expired", stale=True)
        qop, nc, cnonce = p.get("qop"), p.get("nc", ""), p.get("cnonce", "")
        if qop != "auth" or not cnonce or len(nc) != 8:
            raise AuthFailure('qop="auth" with cnonce and nc is required')
        try:
            count = int(nc, 16)
        except ValueError:
            raise AuthFailure("malformed nc") from None
        password = self._passwords.get(username)
        # An unknown user costs the same work as a known one (no timing oracle for user names).
        expected = response_for(
            username=username,
            password=password if password is not None else "",
            realm=self.realm,
            nonce=nonce,
            method=method,
            uri=uri,
            nc=nc,
            cnonce=cnonce,
            algorithm=hash_name,
            qop=qop,
        )
        if password is None or not hmac.compare_digest(expected, response.lower()):
            raise AuthFailure("wrong credentials")
        last = self._counts.get(nonce, 0)
        if count <= last:
            raise AuthFailure("nonce-count replayed", forbidden=True)
        self._remember(nonce, count)
        return Credentials(username)

    def _remember(self, nonce: str, count: int) -> None:
        self._counts[nonce] = count
        self._counts.move_to_end(nonce)
        while len(self._counts) > self._max:
            self._counts.popitem(last=False)


def response_for(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    nc: str,
    cnonce: str,
    algorithm: str = "SHA-256",
    qop: str = "auth",
) -> str:
    """The ``response`` a client computes (RFC 8760 §2.4, RFC 7616 §3.4.1); for tests and tools."""
    h = ALGORITHMS[algorithm]

    def digest(text: str) -> str:
        return h(text.encode()).hexdigest()

    ha1 = digest(f"{username}:{realm}:{password}")
    ha2 = digest(f"{method}:{uri}")
    return digest(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
