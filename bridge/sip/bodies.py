"""INFO bodies for DTMF keys, as phones send them (the legacy INFO usage of RFC 6086, no package).

- ``application/dtmf-relay``: ``Signal=5`` / ``Duration=160`` lines, as Cisco and most desk phones send.
  No RFC defines it; we read it as leniently as the phones that write it.
- ``application/dtmf``: the key alone (the body format of draft-ietf-sip-info-dtmf era phones).

Parsers take any bytes and return a typed value or raise :class:`RemoteProtocolError` with the status
to answer (400 malformed, 415 another body type); nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RemoteProtocolError

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"

#: Largest INFO body we read (security limit). A key press is ~30 bytes and a JSON request of an
#: INFO package a few hundred; 4 KiB bounds the decoders' work per request while leaving room for
#: vendor extras.
MAX_BODY = 4096
#: Longest key press we record. A key is held for well under a second; a larger Duration is a
#: broken phone, and its key still counts (the Duration is dropped, not the key).
MAX_DURATION_MS = 60_000

_KEYS = frozenset("0123456789*#ABCD")
# RFC 4733 §3.2 event codes 0-15, which some phones put in Signal= instead of the key.
_EVENT_CODES = {str(i): k for i, k in enumerate("0123456789*#ABCD")}
_DTMF_ACCEPT = (("Accept", f"{DTMF_RELAY}, {DTMF}"),)


@dataclass(frozen=True, slots=True)
class DtmfKey:
    """One key press from an INFO body."""

    digit: str
    """``0``-``9``, ``*``, ``#`` or ``A``-``D``."""
    duration_ms: int | None = None
    """How long the key was held, when the body says so and it is plausible."""


def _key(text: str) -> str:
    value = text.strip().upper()
    key = _EVENT_CODES.get(value, value)
    if key not in _KEYS:
        raise RemoteProtocolError(f"not a DTMF key: {text.strip()[:10]!r}")
    return key


def _duration(text: str) -> int | None:
    value = text.strip()
    # ASCII digits only (str.isdigit also accepts "²"), and few enough to be cheap to convert.
    if value.isascii() and value.isdigit() and len(value) <= 6:
        number = int(value)
        if number <= MAX_DURATION_MS:
            return number
    return None


def parse_dtmf(body: bytes, content_type: str) -> DtmfKey:
    """One key press from an INFO body of ``content_type`` (``DTMF_RELAY`` or ``DTMF``).

    ``application/dtmf-relay``::

        Signal=5
        Duration=160

    Keys are case-insensitive, spaces around ``=`` and LF-only or CR-only line ends are fine, unknown
    keys are ignored. Signal is a key or its RFC 4733 event code (10 → ``*``, 11 → ``#``, 12-15 →
    ``A``-``D``). ``application/dtmf`` is the key (or code) alone; a ``Signal=`` body under that type
    is read as dtmf-relay, since phones mix the two up. No valid key → 400; another type → 415.
    """
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type not in (DTMF_RELAY, DTMF):
        raise RemoteProtocolError(
            f"not a DTMF body type: {media_type[:40]!r}",
            status_hint=415,
            extra_headers=_DTMF_ACCEPT,
        )
    if len(body) > MAX_BODY:
        raise RemoteProtocolError("DTMF body too large")
    # ASCII with replacement: every valid body is ASCII, and U+FFFD is never a key.
    text = body.decode("ascii", "replace")
    if media_type == DTMF and "=" not in text:
        return DtmfKey(_key(text))
    signal: str | None = None
    duration: int | None = None
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if not eq:
            continue
        name = name.strip().lower()
        if name == "signal":
            signal = value
        elif name == "duration":
            duration = _duration(value)
    if signal is None:
        raise RemoteProtocolError("DTMF relay body without Signal=")
    return DtmfKey(_key(signal), duration)
