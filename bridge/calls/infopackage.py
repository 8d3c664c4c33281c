"""The bridge's INFO package (RFC 6086): JSON requests from modern endpoints and the replies and
events we send them (docs/behaviour.md, "Phone to server" and "Server to phone").

Bodies are ``application/vnd.spaces.bridge+json`` objects with a ``type``; requests carry an ``id``
that the reply echoes. The package is named ``spaces-bridge`` in ``Info-Package``, which endpoints
may omit. It is negotiated as RFC 6086 §5 says: our answers list it in ``Recv-Info``, and our INFO
events name it in ``Info-Package`` only when the phone's ``Recv-Info`` listed it; to other modern
endpoints they go as a legacy INFO usage (§9), without the header. The parser takes any bytes and
returns a typed request or raises :class:`~bridge.sip.RemoteProtocolError` with the status to answer
(400 malformed, 415 an unknown request type); nothing else.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Literal

from ..sip import RemoteProtocolError, Request
from ..sip.bodies import MAX_BODY

CONTENT_TYPE = "application/vnd.spaces.bridge+json"
PACKAGE = "spaces-bridge"
RECV_INFO_HEADER = (("Recv-Info", PACKAGE),)
"""In our 2xx to (re-)INVITEs and our 469: the package we take INFO requests for."""
NEGOTIATED = "recv-info"
"""Among a call's signalling methods: the phone's ``Recv-Info`` listed our package. A member of the
call's (shared) method set rather than a field of its own: a held call carries no extra byte."""


def listed(request: Request) -> bool | None:
    """Whether the ``Recv-Info`` header fields of a (re-)INVITE list our package; None when there
    are none, which leaves the dialog's package set as it was (RFC 6086 §5.2.3). An empty field
    means no package at all."""
    values = request.headers.get_all("recv-info")
    if not values:
        return None
    return any(name.strip().lower() == PACKAGE for value in values for name in value.split(","))


@functools.cache
def with_listed(methods: frozenset[str], listed: bool) -> frozenset[str]:
    """``methods`` with or without :data:`NEGOTIATED`: one shared set per combination (they come
    from the configuration, so there are a handful)."""
    return methods | {NEGOTIATED} if listed else methods - {NEGOTIATED}


#: Longest JSON request ``id`` we accept: it is echoed in replies and logged.
MAX_ID = 128


# -- requests (docs/behaviour.md, "Phone to server") -----------------------------------------------


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


def parse_request(body: bytes) -> JsonRequest:
    """A request from a modern endpoint.

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


# -- what we send (docs/behaviour.md, "Phone to server" and "Server to phone") ---------------------


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
    """``{"type": "muteall", "phase"}``: a moderator muted everyone (muting, then muted)."""
    return _encode({"type": "muteall", "phase": phase})


def lobby_event(state: Literal["waiting", "admitted", "denied"]) -> bytes:
    """``{"type": "lobby", "state"}``: where the caller stands in the lobby (docs/behaviour.md,
    "Lobby")."""
    return _encode({"type": "lobby", "state": state})


def preventunmuting_event(*, enabled: bool) -> bytes:
    """``{"type": "preventunmuting", "enabled"}``: the space's "prevent unmuting" setting."""
    return _encode({"type": "preventunmuting", "enabled": enabled})


def meeting_event(state: Literal["ended"]) -> bytes:
    """``{"type": "meeting", "state"}``: the meeting ended (a BYE follows)."""
    return _encode({"type": "meeting", "state": state})
