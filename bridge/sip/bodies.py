"""INFO bodies the bridge reads and writes: DTMF keys and the Spaces JSON package (SPEC §4, §5).

- ``application/dtmf-relay``: ``Signal=5`` / ``Duration=160`` lines, as Cisco and most desk phones send.
  No RFC defines it; we read it as leniently as the phones that write it.
- ``application/dtmf``: the key alone (the body format of draft-ietf-sip-info-dtmf era phones).
- ``application/vnd.spaces.bridge+json`` (Info-Package ``spaces-bridge``, RFC 6086): JSON objects with
  ``type`` and ``id`` from modern endpoints, and the replies and events we send them.

Parsers take any bytes and return a typed value or raise :class:`RemoteProtocolError` with the status
to answer (400 malformed, 415 unknown body or request type); nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from .errors import RemoteProtocolError

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
SPACES_JSON = "application/vnd.spaces.bridge+json"
INFO_PACKAGE = "spaces-bridge"

#: Largest INFO body we read (security limit). A key press is ~30 bytes and our JSON requests under
#: 200; 4 KiB bounds the decoders' work per request while leaving room for vendor extras.
MAX_BODY = 4096
#: Longest JSON request ``id`` we accept: it is echoed in replies and logged.
MAX_ID = 128
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


# -- Spaces JSON requests (SPEC §4) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaStateRequest:
    """``{"type": "mediastate", "id", "audio"?, "video"?}``: ``True`` means sending (unmuted)."""

    id: str
    audio: bool | None = None
    video: bool | None = None


@dataclass(frozen=True, slots=True)
class RaiseHandRequest:
    """``{"type": "raisehand", "id"}``: ask the moderators for permission to unmute."""

    id: str


@dataclass(frozen=True, slots=True)
class LowerHandRequest:
    """``{"type": "lowerhand", "id"}``: withdraw a raised hand."""

    id: str


JsonRequest = MediaStateRequest | RaiseHandRequest | LowerHandRequest


def parse_json_request(body: bytes) -> JsonRequest:
    """A request from a modern endpoint (SPEC §4).

    400 for a body that is too large, not UTF-8 JSON, not an object, without a string ``type``, with
    an ``id`` that is not a string of 1-``MAX_ID`` characters, or with wrong field types; 415 for an
    unknown ``type``. Unknown fields are ignored and ``null`` counts as absent, so that later
    versions of the package can add fields.
    """
    if len(body) > MAX_BODY:
        raise RemoteProtocolError(f"JSON body too large (over {MAX_BODY} bytes)")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RemoteProtocolError(f"body is not JSON: {str(exc)[:80]}") from None
    except RecursionError:
        # 4 KiB of "[" nests deeper than the decoder's recursion limit.
        raise RemoteProtocolError("body is not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise RemoteProtocolError("JSON body must be an object")
    kind, rid = data.get("type"), data.get("id")
    if not isinstance(kind, str):
        raise RemoteProtocolError('JSON body needs a string "type"')
    if not isinstance(rid, str) or not rid or len(rid) > MAX_ID:
        raise RemoteProtocolError(f'JSON body needs a string "id" of 1-{MAX_ID} characters')
    if kind == "mediastate":
        audio, video = data.get("audio"), data.get("video")
        for name, value in (("audio", audio), ("video", video)):
            if value is not None and not isinstance(value, bool):
                raise RemoteProtocolError(f'"{name}" must be true or false')
        if audio is None and video is None:
            raise RemoteProtocolError('mediastate needs "audio" or "video"')
        return MediaStateRequest(rid, audio, video)
    if kind == "raisehand":
        return RaiseHandRequest(rid)
    if kind == "lowerhand":
        return LowerHandRequest(rid)
    raise RemoteProtocolError(f"unknown request type {kind[:40]!r}", status_hint=415)


# -- what we send (SPEC §4, §5) --------------------------------------------------------------------


def _encode(data: dict[str, object]) -> bytes:
    # Compact and sorted: the same state always gives the same bytes (tests, logs, dedup).
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def encode_reply(
    request_id: str, status: Literal["ok", "denied", "failed"], reason: str | None = None
) -> bytes:
    """``{"type": "reply", "id", "status", "reason"?}``: the outcome of request ``request_id``."""
    data: dict[str, object] = {"type": "reply", "id": request_id, "status": status}
    if reason is not None:
        data["reason"] = reason
    return _encode(data)


def tracksstatus_event(*, audio: bool, video: bool) -> bytes:
    """``{"type": "tracksstatus.change", "audio", "video"}``: the state the server wants."""
    return _encode({"type": "tracksstatus.change", "audio": audio, "video": video})


def hand_event(state: Literal["raised", "lowered", "accepted"]) -> bytes:
    """``{"type": "hand", "state"}``."""
    return _encode({"type": "hand", "state": state})


def muteall_event(phase: Literal["muting", "muted"]) -> bytes:
    """``{"type": "muteall", "phase"}``: a moderator muted everyone (SPEC §8 muting, then muted)."""
    return _encode({"type": "muteall", "phase": phase})


def lobby_event(state: Literal["waiting", "admitted", "denied"]) -> bytes:
    """``{"type": "lobby", "state"}``: where the caller stands in the lobby (SPEC §6)."""
    return _encode({"type": "lobby", "state": state})


def preventunmuting_event(*, enabled: bool) -> bytes:
    """``{"type": "preventunmuting", "enabled"}``: the space's "prevent unmuting" setting."""
    return _encode({"type": "preventunmuting", "enabled": enabled})


def meeting_event(state: Literal["ended"]) -> bytes:
    """``{"type": "meeting", "state"}``: the meeting ended (a BYE follows)."""
    return _encode({"type": "meeting", "state": state})
