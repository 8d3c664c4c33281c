"""The first check on every message, before the SIP stack spends anything on it (docs/behaviour.md,
Limits and bad input).

- Known scanners (``friendly-scanner``, ``sipvicious``, ``sipcli``… in User-Agent) are dropped without
  an answer: an answer only confirms that a SIP service is there.
- Each source address gets a token bucket: ``rate`` messages per second with bursts of ``burst``;
  beyond it messages are dropped, so that one flooding source cannot take the loop from the others.
- INVITEs, which each cost conference requests and may hold a call, have a second, tighter bucket
  per source (``invite_rate``, ``invite_burst``): a phone places a call every few seconds at most,
  while an unanswered-INVITE flood sends thousands per second.
- Buckets live in tables bounded to ``max_sources`` (least recently seen forgotten first).
- ``trusted`` networks (the SIP proxies in front of the bridge, ``[limits] trusted_proxies``) have
  no per-source buckets: a proxy aggregates many phones and is not one abusive source. The scanner
  check and the global bounds (transactions, dialogs, calls joining) still apply to their messages.

Pure: the caller passes the time. Counts are kept for metrics.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: User-Agent values of SIP scanners (case-insensitive, matched on the raw header line).
SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipsak", "iWar", "sundayddr")
_HEAD_LIMIT = 2048  # the User-Agent of a scanner comes early; do not search a whole 64 KiB body


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    trusted: bool = False
    """The source is a trusted proxy: decided once, when its bucket is made."""


class Guard:
    def __init__(
        self,
        *,
        rate: float = 1000.0,
        burst: float = 2000.0,
        invite_rate: float = 50.0,
        invite_burst: float = 100.0,
        scanners: tuple[str, ...] = SCANNERS,
        max_sources: int = 100_000,
        trusted: Iterable[Network] = (),
    ) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._invites: OrderedDict[str, _Bucket] = OrderedDict()
        self._max = max_sources
        self.scanners_dropped = 0
        self.rate_dropped = 0
        self.invites_dropped = 0
        self.reconfigure(
            rate=rate,
            burst=burst,
            invite_rate=invite_rate,
            invite_burst=invite_burst,
            scanners=scanners,
            trusted=trusted,
        )

    def reconfigure(
        self,
        *,
        rate: float,
        burst: float,
        scanners: tuple[str, ...],
        invite_rate: float = 50.0,
        invite_burst: float = 100.0,
        trusted: Iterable[Network] = (),
    ) -> None:
        """New limits (SIGHUP); buckets keep their tokens, capped by the new burst."""
        self._trusted = tuple(trusted)
        for table in (self._buckets, self._invites):
            for host, bucket in table.items():
                bucket.trusted = self.trusts(host)
        self.rate = rate
        self.burst = burst
        self.invite_rate = invite_rate
        self.invite_burst = invite_burst
        self._names = tuple(s.lower().encode() for s in scanners)
        self._scanner = (
            re.compile(
                rb"^(?:user-agent|from)[ \t]*:[^\r\n]*(?:"
                + b"|".join(re.escape(s.encode()) for s in scanners)
                + rb")",
                re.IGNORECASE | re.MULTILINE,
            )
            if scanners
            else None
        )

    def admit(self, data: bytes, host: str, now: float) -> bool:
        """Whether the message from ``host`` may go to the SIP stack."""
        if (
            self._scanner is not None
            and self._named(data)
            and self._scanner.search(data, 0, _HEAD_LIMIT)
        ):
            self.scanners_dropped += 1
            return False
        if self.rate > 0 and not self._take(self._buckets, host, self.rate, self.burst, now):
            self.rate_dropped += 1
            return False
        if (
            self.invite_rate > 0
            and data.startswith(b"INVITE ")
            and not self._take(self._invites, host, self.invite_rate, self.invite_burst, now)
        ):
            self.invites_dropped += 1
            return False
        return True

    def trusts(self, host: str) -> bool:
        """Whether ``host`` is in a trusted proxy network."""
        if not self._trusted:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def _named(self, data: bytes) -> bool:
        """Whether a scanner's name appears at all: half the cost of the anchored pattern, which
        then only runs on the rare message that names one."""
        head = data[:_HEAD_LIMIT].lower()
        return any(name in head for name in self._names)

    def _take(
        self, table: OrderedDict[str, _Bucket], host: str, rate: float, burst: float, now: float
    ) -> bool:
        bucket = table.get(host)
        if bucket is None:
            bucket = table[host] = _Bucket(burst, now, self.trusts(host))
            if len(table) > self._max:
                table.popitem(last=False)
        else:
            table.move_to_end(host)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
        if bucket.trusted:
            return True
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True
