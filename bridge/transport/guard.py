"""The first check on every message, before the SIP stack spends anything on it (SPEC §10).

- Known scanners (``friendly-scanner``, ``sipvicious``, ``sipcli``… in User-Agent) are dropped without
  an answer: an answer only confirms that a SIP service is there.
- Each source address gets a token bucket: ``rate`` messages per second with bursts of ``burst``;
  beyond it messages are dropped, so that one flooding source cannot take the loop from the others.
  Buckets live in a table bounded to ``max_sources`` (least recently seen forgotten first).

Pure: the caller passes the time. Counts are kept for metrics.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

#: User-Agent values of SIP scanners (case-insensitive, matched on the raw header line).
SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipsak", "iWar", "sundayddr")
_HEAD_LIMIT = 2048  # the User-Agent of a scanner comes early; do not search a whole 64 KiB body


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class Guard:
    def __init__(
        self,
        *,
        rate: float = 1000.0,
        burst: float = 2000.0,
        scanners: tuple[str, ...] = SCANNERS,
        max_sources: int = 100_000,
    ) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max = max_sources
        self.scanners_dropped = 0
        self.rate_dropped = 0
        self.reconfigure(rate=rate, burst=burst, scanners=scanners)

    def reconfigure(self, *, rate: float, burst: float, scanners: tuple[str, ...]) -> None:
        """New limits (SIGHUP); buckets keep their tokens, capped by the new burst."""
        self.rate = rate
        self.burst = burst
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
        if self._scanner is not None and self._scanner.search(data, 0, _HEAD_LIMIT):
            self.scanners_dropped += 1
            return False
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = _Bucket(self.burst, now)
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(host)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens < 1:
            self.rate_dropped += 1
            return False
        bucket.tokens -= 1
        return True
