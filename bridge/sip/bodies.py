"""INFO bodies the bridge reads and writes: DTMF keys and the Spaces JSON package (SPEC §4, §5).

- ``application/dtmf-relay``: ``Signal=5`` / ``Duration=160`` lines, as Cisco and most desk phones send.
- ``application/dtmf``: the key alone (the body format of draft-ietf-sip-info-dtmf era phones).
- ``application/vnd.spaces.bridge+json``: JSON objects with ``type`` and ``id`` from modern endpoints,
  and the replies and events we send them.
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

#: Largest INFO body we read. A key press is ~30 bytes and our JSON requests under 200; 4 KiB bounds
#: the JSON decoder's work per request while leaving room for vendor extras.
MAX_BODY = 4096
#: Longest JSON request ``id`` we echo back in replies.
MAX_ID = 128

_KEYS = frozenset("0123456789*#ABCD")
# RFC 4733 §3.2 event codes, which some phones put in Signal= instead of the key.
_EVENT_CODES = {str(i): k for i, k in enumerate("0123456789*#ABCD")}


@dataclass(frozen=True, slots=True)
class DtmfKey:
    digit: str
    duration_ms: int | None = None


def _key(text: str) -> str:
    value = text.strip().upper()
    key = _EVENT_CODES.get(value, value)
    if key not in _KEYS:
        raise RemoteProtocolError(f"not a DTMF key: {text.strip()[:10]!r}")
    return key


def parse_dtmf(body: bytes, content_type: str) -> DtmfKey:
    """One key press from an INFO body of ``content_type`` (``DTMF_RELAY`` or ``DTMF``)."""
    if len(body) > MAX_BODY:
        raise RemoteProtocolError("DTMF body too large")
    text = body.decode("ascii", "replace")
    if content_type == DTMF:
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
            value = value.strip()
            # Bounded: a key is held for at most seconds; 10 digits cannot overflow anything.
            if value.isdigit() and len(value) <= 10:
                duration = int(value)
    if signal is None:
        raise RemoteProtocolError("DTMF relay body without Signal=")
    return DtmfKey(_key(signal), duration)


@dataclass(frozen=True, slots=True)
class MediaStateRequest:
    """``{"type": "mediastate", "id", "audio"?, "video"?}``: true means sending (unmuted)."""

    id: str
    audio: bool | None = None
    video: bool | None = None


@dataclass(frozen=True, slots=True)
class RaiseHandRequest:
    id: str


@dataclass(frozen=True, slots=True)
class LowerHandRequest:
    id: str


JsonRequest = MediaStateRequest | RaiseHandRequest | LowerHandRequest


def parse_json_request(body: bytes) -> JsonRequest:
    """A request from a modern endpoint. 400 for malformed bodies, 415 for an unknown ``type``."""
    if len(body) > MAX_BODY:
        raise RemoteProtocolError("JSON body too large")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RemoteProtocolError(f"body is not JSON: {exc}") from None
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


def _encode(data: dict[str, object]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def encode_reply(
    request_id: str, status: Literal["ok", "denied", "failed"], reason: str | None = None
) -> bytes:
    data: dict[str, object] = {"type": "reply", "id": request_id, "status": status}
    if reason is not None:
        data["reason"] = reason
    return _encode(data)


def tracksstatus_event(*, audio: bool, video: bool) -> bytes:
    return _encode({"type": "tracksstatus.change", "audio": audio, "video": video})


def hand_event(state: Literal["raised", "lowered", "accepted"]) -> bytes:
    return _encode({"type": "hand", "state": state})


def muteall_event(phase: Literal["muting", "muted"]) -> bytes:
    return _encode({"type": "muteall", "phase": phase})


def lobby_event(state: str) -> bytes:
    return _encode({"type": "lobby", "state": state})


def preventunmuting_event(*, enabled: bool) -> bytes:
    return _encode({"type": "preventunmuting", "enabled": enabled})


def meeting_event(state: Literal["ended"]) -> bytes:
    return _encode({"type": "meeting", "state": state})
