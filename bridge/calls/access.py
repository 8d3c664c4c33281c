"""Who may call (docs/behaviour.md, SIP surface): source networks, then digest authentication for
INVITE and SUBSCRIBE, with the caller's role. Pure but for the clock it is given."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..sip import AuthFailure, DigestAuthenticator, Request


@dataclass(frozen=True, slots=True)
class AuthUser:
    user: str
    password: str = field(repr=False)
    role: str = "member"
    """``moderator`` (skips the lobby, may mute all with ``*7``), ``member`` or ``guest``."""


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Who may call (docs/behaviour.md, SIP surface): digest users and source networks. Empty =
    anyone, as a guest."""

    realm: str = "spaces-bridge"
    nonce_lifetime_seconds: float = 300.0
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    """Digest algorithms offered, preferred first (RFC 8760)."""
    users: tuple[AuthUser, ...] = ()
    """With users, INVITE and SUBSCRIBE must authenticate (401 challenges, SHA-256 and MD5)."""
    allow: tuple[str, ...] = ()
    """Source networks (CIDR) that may send requests; empty = every source."""
    deny: tuple[str, ...] = ()
    """Source networks refused with 403, even inside ``allow``."""


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Caller:
    role: str
    """``moderator``, ``member`` or ``guest`` (every caller when no users are configured)."""
    user: str | None = None


class Access:
    def __init__(self, config: AuthConfig) -> None:
        self._allow = [ipaddress.ip_network(n, strict=False) for n in config.allow]
        self._deny = [ipaddress.ip_network(n, strict=False) for n in config.deny]
        self._roles = {u.user: u.role for u in config.users}
        self._digest = (
            DigestAuthenticator(
                config.realm,
                {u.user: u.password for u in config.users},
                nonce_lifetime=config.nonce_lifetime_seconds,
                algorithms=config.algorithms,
            )
            if config.users
            else None
        )

    def source_allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if any(address in n for n in self._deny):
            return False
        return not self._allow or any(address in n for n in self._allow)

    def caller(self, request: Request, now: float) -> Caller | Refusal:
        """The authenticated caller of a dialog-creating request, or how to refuse it."""
        if self._digest is None:
            return Caller("guest")
        credentials = request.headers.get_all("authorization")
        if not credentials:
            return self._challenge(now, stale=False)
        try:
            verified = self._digest.verify(credentials[0], request.method, now)
        except AuthFailure as exc:
            if exc.forbidden:
                return Refusal(403, "Forbidden")
            return self._challenge(now, stale=exc.stale)
        return Caller(self._roles[verified.username], verified.username)

    def _challenge(self, now: float, *, stale: bool) -> Refusal:
        assert self._digest is not None
        challenges = self._digest.challenges(now, stale=stale)
        return Refusal(401, "Unauthorized", tuple(("WWW-Authenticate", c) for c in challenges))
