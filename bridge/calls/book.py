"""The calls in progress, found by Call-ID, dialog or attendee, and the ways a call ends: refused
(the INVITE's final response), hung up (BYE) or, in every case, ended once: forgotten, its port
released and its attendee taken out of the meeting.

Every part of the call layer that can end a call (joining, the lobby, the voice menu, server events,
a drain) ends it here, so that a call is counted, closed and left exactly once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..ops.metrics import Metrics
from ..sip import DialogId, Endpoint
from .attendance import Attendance
from .audio import CallAudio
from .call import Call, Step, clog
from .signalling import Responder


class CallBook:
    """Every call between its INVITE and its end; one instance per daemon."""

    def __init__(
        self,
        endpoint: Endpoint,
        respond: Responder,
        audio: CallAudio,
        attendance: Attendance,
        *,
        clock: Callable[[], float],
        flush: Callable[[], None],
        spawn: Callable[[Awaitable[object]], None],
        on_end: Callable[[Call], None],
        metrics: Metrics | None = None,
    ) -> None:
        """``on_end(call)`` lets the voice menu forget a call that ends while in it."""
        self._endpoint = endpoint
        self._respond = respond
        self._audio = audio
        self._attendance = attendance
        self._clock = clock
        self._flush = flush
        self._spawn = spawn
        self._on_end = on_end
        self._metrics = metrics
        self.calls: dict[str, Call] = {}  # by Call-ID
        self.by_dialog: dict[DialogId, Call] = {}
        self.by_attendee: dict[str, Call] = {}

    def in_space(self, space_id: str) -> list[Call]:
        return [c for c in self.calls.values() if c.space_id == space_id and not c.ended]

    def refuse(
        self,
        call: Call,
        status: int,
        reason: str,
        why: str,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        reason_text: str | None = None,
    ) -> None:
        if call.request_id is not None:
            rid, call.request_id = call.request_id, None
            if reason_text is not None:
                # RFC 3326: say why in a form phones can show.
                headers = (*headers, ("Reason", f'SIP;cause={status};text="{reason_text}"'))
            self._respond(rid, status, reason, headers=headers)
            self._flush()
        clog(call).info("call refused", status=status, why=why)
        self.end(call, f"refused {status}")

    def farewell(self, call: Call) -> None:
        """The meeting ended: the phone hears so (when prompts play), then gets BYE."""

        def bye() -> None:
            if not call.ended:
                self.hang_up(call, "meeting ended")

        self._audio.farewell(call, bye)

    def hang_up(self, call: Call, why: str, *, reason: tuple[int, str] | None = None) -> None:
        """BYE, with an RFC 3326 ``Reason`` when ``reason`` (cause, text) says why."""
        self.end(call, why)  # first, so that the BYE's own DialogTerminated finds nothing to end
        if call.dialog is not None and self._endpoint.dialog(call.dialog) is not None:
            headers: tuple[tuple[str, str], ...] = ()
            if reason is not None:
                headers = (("Reason", f'SIP;cause={reason[0]};text="{reason[1]}"'),)
            self._endpoint.send_in_dialog(call.dialog, "BYE", now=self._clock(), headers=headers)
            self._flush()

    def end(self, call: Call, why: str) -> None:
        """Forget the call, release its port, and leave the meeting (which also withdraws a lobby
        request)."""
        if call.ended:
            return
        call.advance(Step.END)
        if self._metrics is not None:
            self._metrics.calls.labels(_outcome(call, why)).inc()
        self.calls.pop(call.call_id, None)
        if call.dialog is not None:
            self.by_dialog.pop(call.dialog, None)
        call.cancel_timers()
        self._on_end(call)
        self._audio.close(call, why)
        if call.attendee_id is not None:
            self.by_attendee.pop(call.attendee_id, None)
            self._spawn(self._attendance.leave(call))
        clog(call).info("call ended", reason=why)


def _outcome(call: Call, why: str) -> str:
    """A small, fixed set of outcomes for the calls counter."""
    if call.dialog is not None:
        return "completed"
    if why == "cancelled":
        return "cancelled"
    if why.startswith("refused "):
        return "refused_" + why.removeprefix("refused ")
    return "failed"
