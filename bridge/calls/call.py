"""One call's data: SIP side (ids, SDP) and meeting side (attendee, policy state), and its lifecycle
as one :class:`Phase` moved by a transition table, in the style of the SIP transactions
(docs/architecture.md): a step the table does not list raises :class:`PhaseError`. Plain data but for
the lock that keeps one call's conference work in order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum, auto

import structlog

from ..ops import logs
from ..sip import DialogId, sdp
from . import policy
from .protocols import Cancellable, MediaPort

log = structlog.get_logger("bridge.calls")


class Unreachable(Exception):  # noqa: N818  (a condition, not an error of ours)
    """The conference server could not be reached or failed: callers get 503 with Retry-After."""


class PhaseError(Exception):
    """A step the call's phase does not allow: a bug in the call layer, never the doing of a phone or
    the server (as :class:`~bridge.sip.LocalProtocolError` is for the SIP core)."""


class Phase(Enum):
    """Where a call is in its life (docs/behaviour.md, "Lobby" and "Meeting lifecycle")."""

    JOINING = auto()
    """The INVITE is unanswered and the caller not in the lobby: joining the meeting, or admitted
    and being answered."""
    WAITING = auto()
    """In the lobby, the INVITE unanswered (ringing)."""
    WAITING_ANSWERED = auto()
    """In the lobby, answered with inactive media (``lobby_answer``)."""
    ADMITTED_INACTIVE = auto()
    """Admitted from ``WAITING_ANSWERED``: our last SDP is still the lobby's inactive one, so we
    re-offer until the phone accepts an offer of ours."""
    ADMITTED = auto()
    """Answered and in the meeting: the phone is told the server's state."""
    MENU = auto()
    """Answered by a dial-in number's voice menu (``sendrecv``: the caller keys the meeting ID),
    not yet in a meeting (docs/calls.md, "One number for every meeting")."""
    ENDED = auto()
    """Refused, cancelled, hung up or gone: forgotten, and out of the meeting."""


class Step(Enum):
    """What moves a call from one phase to the next."""

    LOBBY = auto()
    """The server put the caller in the lobby."""
    ANSWER = auto()
    """We answer the INVITE (200)."""
    ADMIT = auto()
    """A moderator admitted the waiting caller."""
    OFFER_ACCEPTED = auto()
    """The phone accepted a re-offer of ours (2xx)."""
    MENU = auto()
    """The voice menu answered the INVITE."""
    JOIN = auto()
    """The menu's caller was admitted to the meeting it chose."""
    END = auto()


TRANSITIONS: dict[tuple[Phase, Step], Phase] = {
    (Phase.JOINING, Step.LOBBY): Phase.WAITING,
    (Phase.JOINING, Step.ANSWER): Phase.ADMITTED,
    (Phase.WAITING, Step.ANSWER): Phase.WAITING_ANSWERED,
    (Phase.WAITING, Step.ADMIT): Phase.JOINING,  # answered next, as an admitted caller
    (Phase.WAITING_ANSWERED, Step.ADMIT): Phase.ADMITTED_INACTIVE,
    (Phase.ADMITTED_INACTIVE, Step.OFFER_ACCEPTED): Phase.ADMITTED,
    (Phase.ADMITTED, Step.OFFER_ACCEPTED): Phase.ADMITTED,
    (Phase.JOINING, Step.MENU): Phase.MENU,
    (Phase.MENU, Step.JOIN): Phase.ADMITTED,
    (Phase.MENU, Step.LOBBY): Phase.WAITING_ANSWERED,  # answered already, by the menu
    **{(phase, Step.END): Phase.ENDED for phase in Phase if phase is not Phase.ENDED},
}
"""``(phase, step) → next phase``; every other pair is a :class:`PhaseError`. An ended call stays
ended: ending it again is the caller's to avoid."""
LOBBY = frozenset({Phase.WAITING, Phase.WAITING_ANSWERED})


@dataclass(slots=True)
class Call:
    """One phone: SIP side (ids, SDP) and meeting side (attendee, policy state). Plain data."""

    call_id: str
    space_id: str
    display_name: str
    state: policy.CallState
    role: str = "guest"
    """The caller's role: ``guest`` unless digest authentication named a member or moderator."""
    endpoint_version: str | None = None
    """The phone's spacesVersion when it is modern (shown to consoles)."""
    methods: frozenset[str] = frozenset({"sdp"})
    """How the phone is told of mute changes (docs/behaviour.md, Server to phone), from its
    generation and User-Agent."""
    request_id: int | None = None
    """The initial INVITE until it is answered."""
    offer: sdp.SessionDescription | None = None
    meeting_id: str | None = None
    attendee_id: str | None = None
    phase: Phase = Phase.JOINING
    """Moved by :meth:`advance` only."""
    dialog: DialogId | None = None
    media: MediaPort | None = None
    session_id: int = 0
    session_version: int = 0
    early_sdp: bytes | None = None
    """Our SDP in the lobby's 183 (early media), which the 200 repeats; only while waiting."""
    offer_shape: tuple[sdp.MediaDescription, ...] | None = None
    """The m-lines of our last SDP in the dialog, which re-offers keep (RFC 3264 §8), as
    :func:`~bridge.sip.offer_answer.offer_shape` gives them: one copy shared by the calls answered alike."""
    offer_request: int | None = None
    """Our re-INVITE in flight, and the audio state it offers: a sub-state beside the phase, since
    offers come and go many times in one phase."""
    offering: bool = False
    sdp_signalling: bool = True
    """Not a phase: a phone that refuses re-offers (488, 501) stays in the meeting without them."""
    keys: policy.KeyBuffer | None = None
    """The key sequence being typed; made on the first key (most calls never send one)."""
    timers: list[Cancellable] | None = None
    """Ringing and lobby timers; made by the first (most calls never wait in the lobby)."""
    _lock: asyncio.Lock | None = field(default=None, repr=False, compare=False)
    action_at: float | None = None
    """When the phone's latest request arrived, until the conference request it causes (metrics)."""
    event_at: float | None = None
    """When the latest server event for this call arrived, until the phone is told (metrics)."""
    logger: tuple[object, structlog.typing.FilteringBoundLogger] | None = field(
        default=None, repr=False, compare=False
    )
    """The call's bound logger and what it was bound for (see :func:`clog`)."""

    def advance(self, step: Step) -> None:
        """Take ``step``: the phase :data:`TRANSITIONS` lists, or :class:`PhaseError`."""
        try:
            self.phase = TRANSITIONS[self.phase, step]
        except KeyError:
            raise PhaseError(f"{step.name} while {self.phase.name}") from None

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    @property
    def waiting(self) -> bool:
        """In the lobby, ringing or answered with inactive media."""
        return self.phase in LOBBY

    @property
    def lock(self) -> asyncio.Lock:
        """Keeps the phone's requests' conference work in order; made on first use: a held call
        that never sends one does not carry it (~100 bytes of each of 50,000 calls)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def add_timer(self, timer: Cancellable) -> None:
        if self.timers is None:
            self.timers = []
        self.timers.append(timer)

    def cancel_timers(self) -> None:
        timers, self.timers = self.timers, None
        for timer in timers or ():
            timer.cancel()

    @property
    def busy(self) -> bool:
        """A phone's request is being carried out."""
        return self._lock is not None and self._lock.locked()


def clog(call: Call) -> structlog.typing.FilteringBoundLogger:
    """The call's logger: every line of a call carries its Call-ID, space, attendee and the
    endpoint's generation (docs/operations.md, Logs)."""
    # Bound once and kept: binding costs more than a filtered-out line. Rebound when a field
    # changes or logging is reconfigured (a reload).
    key = (call.attendee_id, call.state.generation, logs.generation)
    if call.logger is not None and call.logger[0] == key:
        return call.logger[1]
    fields: dict[str, str] = {"call_id": call.call_id, "space": call.space_id}
    if call.attendee_id is not None:
        fields["attendee_id"] = call.attendee_id
    fields["version"] = call.state.generation.value
    bound: structlog.typing.FilteringBoundLogger = log.bind(**fields)
    call.logger = (key, bound)
    return bound
