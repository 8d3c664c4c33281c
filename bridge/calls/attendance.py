"""A call's attendee in its meeting (docs/behaviour.md, Legacy and modern endpoints): joining the
space's active meeting, with what each refusal of the server tells the phone, and leaving once the
call ends, patiently while the server fails."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from ..conference.client.client import SpacesClient
from ..conference.client.errors import Conflict, Forbidden, NotFound, SpacesError, is_refusal
from ..conference.client.models import Role
from ..conference.wire import MediaEndpoint, MediaOffer
from .actions import ATTENDEE_TYPE, RETRY_AFTER
from .call import Call, clog

#: The version the bridge joins with for every phone: it is a modern client on their behalf
#: (docs/behaviour.md, What it does).
CLIENT_VERSION = "1.1"
#: How long (seconds) an ended call keeps trying to leave a meeting on a failing server.
LEAVE_PATIENCE = 600.0


class Refused(Exception):  # noqa: N818  (the server's answer, not an error of ours)
    """The call cannot join: the final response for the phone's INVITE, and why (for the log)."""

    def __init__(
        self,
        status: int,
        reason: str,
        why: str,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        reason_text: str | None = None,
    ) -> None:
        super().__init__(why)
        self.status = status
        self.reason = reason
        self.why = why
        self.headers = headers
        self.reason_text = reason_text


class Attendance:
    def __init__(
        self, client: SpacesClient, *, subscribe: Callable[[str], Awaitable[None]]
    ) -> None:
        self._client = client
        self._subscribe = subscribe

    async def join(
        self, call: Call, *, media: MediaOffer | None = None
    ) -> tuple[bool, MediaEndpoint | None]:
        """Make ``call`` an attendee of its space's active meeting, with the state the server gives
        it: whether it is admitted (else it waits in the lobby), and the media endpoint the server
        names for its audio (``media`` says where the bridge takes the meeting's). Raises
        :class:`Refused`."""
        try:
            await self._subscribe(call.space_id)
            meeting = await self._client.active_meeting(call.space_id)
            call.meeting_id = meeting.meeting_id
            call.state.prevent_unmuting = meeting.settings.prevent_unmuting
            joined = await self._client.join(
                call.space_id,
                meeting.meeting_id,
                attendee_type=ATTENDEE_TYPE,
                display_name=call.display_name,
                version=CLIENT_VERSION,
                guest=call.role == "guest",
                role=Role.MODERATOR if call.role == "moderator" else None,
                # One string per version, not per attendee (the server keeps it for each).
                endpoint=sys.intern(f"sip/{call.endpoint_version or 'legacy'}"),
                media=media,
            )
        except NotFound as exc:
            if exc.code == "no_active_meeting":
                raise Refused(480, "No Active Meeting", exc.message) from exc
            raise Refused(404, "Unknown Space", exc.message) from exc
        except Forbidden as exc:
            raise Refused(603, "Decline", exc.message, reason_text="Guest denied") from exc
        except Conflict as exc:
            # RFC 3261 §21.4.24: reached, but cannot take another call (a full meeting); any other
            # conflict (the meeting ended meanwhile) is worth trying again.
            if exc.code == "meeting_full":
                raise Refused(486, "Busy Here", exc.message, reason_text="Meeting full") from exc
            raise Refused(480, "Temporarily Unavailable", exc.message) from exc
        except SpacesError as exc:
            clog(call).warning("conference unreachable", error=str(exc))
            raise Refused(503, "Conference Unavailable", str(exc), headers=RETRY_AFTER) from exc
        call.attendee_id = joined.attendee_id
        call.state.audio = joined.media_state.audio
        call.state.video = joined.media_state.video
        return joined.admitted, joined.media

    async def leave(self, call: Call) -> None:
        """Take the ended call out of the meeting. While the server fails, keep trying (with
        backoff, for a bounded time): a phone that hung up must not stay in the roster."""
        assert call.meeting_id is not None and call.attendee_id is not None
        delay, waited = 1.0, 0.0
        while True:
            try:
                await self._client.leave(
                    call.space_id, call.meeting_id, ATTENDEE_TYPE, call.attendee_id
                )
            except SpacesError as exc:
                if waited >= LEAVE_PATIENCE or is_refusal(exc):
                    clog(call).warning("leave failed", error=str(exc))
                    return
                clog(call).info("leave deferred", error=str(exc), retry_in=delay)
            else:
                return
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 30.0)
