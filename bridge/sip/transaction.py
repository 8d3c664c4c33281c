"""RFC 3261 §17 transactions, with RFC 6026's Accepted state, as explicit state tables.

Each kind of transaction (INVITE or non-INVITE, client or server) is one table from ``(state, input)`` to
``(next state, actions)``. Anything unlisted is an error: a TU input raises :class:`LocalProtocolError`,
and every network input is listed for every state, so that nothing a peer sends can raise. So is a
transport error (absorbed where the transaction has nothing in flight): the endpoint reports one to every
client transaction bound for the failed destination, whatever its state. Timers are deadlines in the
transaction (``next_deadline()`` / ``handle_timer(now)``); time is always passed in.

The optional "100 Trying after 200 ms" of §17.2.1 is not here: the endpoint answers 100 at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from .errors import LocalProtocolError
from .headers import CSeq, Headers
from .message import Request, Response


@dataclass(frozen=True, slots=True)
class TimerConfig:
    t1: float = 0.5
    """RTT estimate: first retransmission interval, and 64*T1 for the timeouts (§17.1.1.1)."""
    t2: float = 4.0
    """Cap on the retransmission interval of non-INVITE requests and INVITE responses."""
    t4: float = 5.0
    """Longest time a message stays in the network: how long Timers I and K absorb duplicates."""


class _Enum(Enum):
    # Enum.__hash__ is a Python function (hash of the name); the transition table hashes three
    # members per step. Members are singletons compared by identity, so the identity hash agrees.
    __hash__ = object.__hash__


class Kind(_Enum):
    INVITE_CLIENT = auto()
    NON_INVITE_CLIENT = auto()
    INVITE_SERVER = auto()
    NON_INVITE_SERVER = auto()


class State(_Enum):
    CALLING = auto()
    TRYING = auto()
    PROCEEDING = auto()
    COMPLETED = auto()
    CONFIRMED = auto()
    ACCEPTED = auto()
    TERMINATED = auto()


class Input(_Enum):
    REQUEST = auto()  # a retransmitted request at a server transaction
    ACK = auto()  # ACK with the INVITE's branch: for a non-2xx final
    ACK_2XX = auto()  # the dialog got the ACK of our 2xx (it has its own branch)
    TU_1XX = auto()
    TU_2XX = auto()
    TU_300_699 = auto()
    RECV_1XX = auto()
    RECV_2XX = auto()
    RECV_300_699 = auto()
    TIMER_A = auto()
    TIMER_B = auto()
    TIMER_D = auto()
    TIMER_E = auto()
    TIMER_F = auto()
    TIMER_G = auto()
    TIMER_H = auto()
    TIMER_I = auto()
    TIMER_J = auto()
    TIMER_K = auto()
    TIMER_L = auto()
    TIMER_M = auto()
    TRANSPORT_ERROR = auto()


TU_INPUTS = frozenset({Input.TU_1XX, Input.TU_2XX, Input.TU_300_699, Input.ACK_2XX})
NETWORK_INPUTS = {
    Kind.INVITE_CLIENT: (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_300_699),
    Kind.NON_INVITE_CLIENT: (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_300_699),
    Kind.INVITE_SERVER: (Input.REQUEST, Input.ACK),
    Kind.NON_INVITE_SERVER: (Input.REQUEST,),
}


class Action(_Enum):
    SEND_REQUEST = auto()
    SEND_RESPONSE = auto()  # the latest response the TU gave us
    SEND_ACK = auto()  # the ACK we built for a non-2xx final (§17.1.1.3)
    PASS_TO_TU = auto()
    START_A = auto()
    DOUBLE_A = auto()
    START_B = auto()
    START_D = auto()
    START_E = auto()
    DOUBLE_E = auto()  # min(2E, T2) while Trying
    E_AT_T2 = auto()  # E = T2 once Proceeding (§17.1.2.2)
    START_F = auto()
    START_G = auto()
    START_G_2XX = auto()  # the 2xx is retransmitted end to end, even over reliable transports
    DOUBLE_G = auto()
    START_H = auto()
    START_I = auto()
    START_J = auto()
    START_K = auto()
    START_L = auto()
    START_M = auto()
    STOP_RETRANSMIT = auto()  # A, E or G
    STOP_TIMEOUT = auto()  # B, F or H
    REPORT_TIMEOUT = auto()
    REPORT_TIMEOUT_UNLESS_ACKED = auto()  # Timer L: a 2xx nobody acknowledged (§13.3.1.4)
    MARK_ACKED = auto()
    REPORT_TRANSPORT_ERROR = auto()


S, I, A = State, Input, Action  # noqa: E741  (table shorthand)
_Row = tuple[State, tuple[Action, ...]]
_FINAL_C = (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_TO_TU, A.START_K)
_TE = (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,))

TRANSITIONS: dict[tuple[Kind, State, Input], _Row] = {
    # INVITE client, §17.1.1 Figure 5, with RFC 6026 Accepted
    **{
        (Kind.INVITE_CLIENT, state, inp): row
        for state, inp, row in [
            (S.CALLING, I.TIMER_A, (S.CALLING, (A.SEND_REQUEST, A.DOUBLE_A))),
            (S.CALLING, I.TIMER_B, (S.TERMINATED, (A.REPORT_TIMEOUT,))),
            (S.CALLING, I.RECV_1XX, (S.PROCEEDING, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_TO_TU))),
            (S.CALLING, I.RECV_2XX,
                (S.ACCEPTED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.PASS_TO_TU, A.START_M))),
            (S.CALLING, I.RECV_300_699,
                (S.COMPLETED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.SEND_ACK, A.PASS_TO_TU, A.START_D))),
            (S.CALLING, I.TRANSPORT_ERROR, _TE),
            (S.PROCEEDING, I.RECV_1XX, (S.PROCEEDING, (A.PASS_TO_TU,))),
            (S.PROCEEDING, I.RECV_2XX, (S.ACCEPTED, (A.PASS_TO_TU, A.START_M))),
            (S.PROCEEDING, I.RECV_300_699, (S.COMPLETED, (A.SEND_ACK, A.PASS_TO_TU, A.START_D))),
            (S.PROCEEDING, I.TRANSPORT_ERROR, _TE),
            (S.COMPLETED, I.RECV_1XX, (S.COMPLETED, ())),
            (S.COMPLETED, I.RECV_2XX, (S.COMPLETED, ())),
            (S.COMPLETED, I.RECV_300_699, (S.COMPLETED, (A.SEND_ACK,))),
            (S.COMPLETED, I.TIMER_D, (S.TERMINATED, ())),
            (S.COMPLETED, I.TRANSPORT_ERROR, _TE),
            (S.ACCEPTED, I.RECV_1XX, (S.ACCEPTED, ())),
            (S.ACCEPTED, I.RECV_2XX, (S.ACCEPTED, (A.PASS_TO_TU,))),  # the TU re-sends its ACK
            (S.ACCEPTED, I.RECV_300_699, (S.ACCEPTED, ())),
            (S.ACCEPTED, I.TIMER_M, (S.TERMINATED, ())),
            (S.ACCEPTED, I.TRANSPORT_ERROR, (S.ACCEPTED, ())),  # the failed send was the TU's ACK
        ]
    },
    # non-INVITE client, §17.1.2 Figure 6
    **{
        (Kind.NON_INVITE_CLIENT, state, inp): row
        for state, inp, row in [
            (S.TRYING, I.TIMER_E, (S.TRYING, (A.SEND_REQUEST, A.DOUBLE_E))),
            (S.TRYING, I.TIMER_F, (S.TERMINATED, (A.REPORT_TIMEOUT,))),
            (S.TRYING, I.RECV_1XX, (S.PROCEEDING, (A.PASS_TO_TU,))),  # E runs on; T2 when it fires
            (S.TRYING, I.RECV_2XX, (S.COMPLETED, _FINAL_C)),
            (S.TRYING, I.RECV_300_699, (S.COMPLETED, _FINAL_C)),
            (S.TRYING, I.TRANSPORT_ERROR, _TE),
            (S.PROCEEDING, I.TIMER_E, (S.PROCEEDING, (A.SEND_REQUEST, A.E_AT_T2))),
            (S.PROCEEDING, I.TIMER_F, (S.TERMINATED, (A.REPORT_TIMEOUT,))),
            (S.PROCEEDING, I.RECV_1XX, (S.PROCEEDING, (A.PASS_TO_TU,))),
            (S.PROCEEDING, I.RECV_2XX, (S.COMPLETED, _FINAL_C)),
            (S.PROCEEDING, I.RECV_300_699, (S.COMPLETED, _FINAL_C)),
            (S.PROCEEDING, I.TRANSPORT_ERROR, _TE),
            (S.COMPLETED, I.RECV_1XX, (S.COMPLETED, ())),
            (S.COMPLETED, I.RECV_2XX, (S.COMPLETED, ())),
            (S.COMPLETED, I.RECV_300_699, (S.COMPLETED, ())),
            (S.COMPLETED, I.TIMER_K, (S.TERMINATED, ())),
            (S.COMPLETED, I.TRANSPORT_ERROR, (S.COMPLETED, ())),
        ]
    },
    # INVITE server, §17.2.1 Figure 7, with RFC 6026 Accepted (the 2xx retransmitted here)
    **{
        (Kind.INVITE_SERVER, state, inp): row
        for state, inp, row in [
            (S.PROCEEDING, I.REQUEST, (S.PROCEEDING, (A.SEND_RESPONSE,))),
            (S.PROCEEDING, I.ACK, (S.PROCEEDING, ())),
            (S.PROCEEDING, I.TU_1XX, (S.PROCEEDING, (A.SEND_RESPONSE,))),
            (S.PROCEEDING, I.TU_2XX, (S.ACCEPTED, (A.SEND_RESPONSE, A.START_G_2XX, A.START_L))),
            (S.PROCEEDING, I.TU_300_699, (S.COMPLETED, (A.SEND_RESPONSE, A.START_G, A.START_H))),
            (S.PROCEEDING, I.TRANSPORT_ERROR, _TE),
            (S.COMPLETED, I.REQUEST, (S.COMPLETED, (A.SEND_RESPONSE,))),
            (S.COMPLETED, I.ACK, (S.CONFIRMED, (A.STOP_RETRANSMIT, A.STOP_TIMEOUT, A.START_I))),
            (S.COMPLETED, I.TIMER_G, (S.COMPLETED, (A.SEND_RESPONSE, A.DOUBLE_G))),
            (S.COMPLETED, I.TIMER_H, (S.TERMINATED, (A.REPORT_TIMEOUT,))),
            (S.COMPLETED, I.TRANSPORT_ERROR, _TE),
            (S.CONFIRMED, I.REQUEST, (S.CONFIRMED, ())),
            (S.CONFIRMED, I.ACK, (S.CONFIRMED, ())),
            (S.CONFIRMED, I.TIMER_I, (S.TERMINATED, ())),
            (S.CONFIRMED, I.TRANSPORT_ERROR, (S.CONFIRMED, ())),
            (S.ACCEPTED, I.REQUEST, (S.ACCEPTED, (A.SEND_RESPONSE,))),
            (S.ACCEPTED, I.ACK, (S.ACCEPTED, ())),
            (S.ACCEPTED, I.ACK_2XX, (S.ACCEPTED, (A.STOP_RETRANSMIT, A.MARK_ACKED))),
            (S.ACCEPTED, I.TU_2XX, (S.ACCEPTED, (A.SEND_RESPONSE,))),
            (S.ACCEPTED, I.TIMER_G, (S.ACCEPTED, (A.SEND_RESPONSE, A.DOUBLE_G))),
            (S.ACCEPTED, I.TIMER_L, (S.TERMINATED, (A.REPORT_TIMEOUT_UNLESS_ACKED,))),
            (S.ACCEPTED, I.TRANSPORT_ERROR, _TE),
        ]
    },
    # non-INVITE server, §17.2.2 Figure 8
    **{
        (Kind.NON_INVITE_SERVER, state, inp): row
        for state, inp, row in [
            (S.TRYING, I.REQUEST, (S.TRYING, ())),
            (S.TRYING, I.TU_1XX, (S.PROCEEDING, (A.SEND_RESPONSE,))),
            (S.TRYING, I.TU_2XX, (S.COMPLETED, (A.SEND_RESPONSE, A.START_J))),
            (S.TRYING, I.TU_300_699, (S.COMPLETED, (A.SEND_RESPONSE, A.START_J))),
            (S.TRYING, I.TRANSPORT_ERROR, _TE),
            (S.PROCEEDING, I.REQUEST, (S.PROCEEDING, (A.SEND_RESPONSE,))),
            (S.PROCEEDING, I.TU_1XX, (S.PROCEEDING, (A.SEND_RESPONSE,))),
            (S.PROCEEDING, I.TU_2XX, (S.COMPLETED, (A.SEND_RESPONSE, A.START_J))),
            (S.PROCEEDING, I.TU_300_699, (S.COMPLETED, (A.SEND_RESPONSE, A.START_J))),
            (S.PROCEEDING, I.TRANSPORT_ERROR, _TE),
            (S.COMPLETED, I.REQUEST, (S.COMPLETED, (A.SEND_RESPONSE,))),
            (S.COMPLETED, I.TIMER_J, (S.TERMINATED, ())),
            (S.COMPLETED, I.TRANSPORT_ERROR, _TE),
        ]
    },
}  # fmt: skip
# A terminated transaction absorbs whatever the network (or the transport) still delivers.
for _kind, _inputs in NETWORK_INPUTS.items():
    for _inp in (*_inputs, I.TRANSPORT_ERROR):
        TRANSITIONS[(_kind, S.TERMINATED, _inp)] = (S.TERMINATED, ())

INITIAL = {
    Kind.INVITE_CLIENT: S.CALLING,
    Kind.NON_INVITE_CLIENT: S.TRYING,
    Kind.INVITE_SERVER: S.PROCEEDING,
    Kind.NON_INVITE_SERVER: S.TRYING,
}
_RETRANSMIT_TIMER = {
    Kind.INVITE_CLIENT: I.TIMER_A,
    Kind.NON_INVITE_CLIENT: I.TIMER_E,
    Kind.INVITE_SERVER: I.TIMER_G,
    Kind.NON_INVITE_SERVER: I.TIMER_G,
}
_TIMEOUT_TIMER = {
    Kind.INVITE_CLIENT: I.TIMER_B,
    Kind.NON_INVITE_CLIENT: I.TIMER_F,
    Kind.INVITE_SERVER: I.TIMER_H,
    Kind.NON_INVITE_SERVER: I.TIMER_H,
}


# -- outputs --------------------------------------------------------------------------------------
# Not frozen: a frozen dataclass sets each field through object.__setattr__, and these two are made
# for every message. Nothing keeps them past the endpoint's loop over a step's outputs.
@dataclass(slots=True)
class Transmit:
    """Send ``message`` to the transaction's peer. Retransmissions pass the same object; bytes
    are a final response already written out (:meth:`ServerTransaction.release`)."""

    message: Request | Response | bytes


@dataclass(slots=True)
class ToTransactionUser:
    """A response for the TU (client transactions)."""

    message: Response


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Timer B/F/H, or Timer L with the 2xx never acknowledged."""


@dataclass(frozen=True, slots=True)
class TransportFailed:
    pass


@dataclass(frozen=True, slots=True)
class Terminated:
    pass


TxOutput = Transmit | ToTransactionUser | TimedOut | TransportFailed | Terminated


class _Transaction:
    __slots__ = (
        "_acked",
        "_interval",
        "_timers",
        "key",
        "kind",
        "reliable",
        "state",
        "timers",
    )

    def __init__(self, kind: Kind, *, reliable: bool, timers: TimerConfig) -> None:
        self.kind = kind
        self.reliable = reliable
        self.timers = timers
        self.state = INITIAL[kind]
        self._timers: dict[Input, float] = {}  # armed timer → deadline
        self._interval = timers.t1  # current retransmission interval (A, E or G)
        self._acked = False
        self.key: tuple[object, ...] = ()

    def next_deadline(self) -> float | None:
        return min(self._timers.values()) if self._timers else None

    def handle_timer(self, now: float) -> list[TxOutput]:
        """Fire every armed timer whose deadline has passed, earliest first."""
        out: list[TxOutput] = []
        while self._timers and self.state is not S.TERMINATED:
            timer, deadline = min(self._timers.items(), key=lambda item: item[1])
            if deadline > now:
                break
            del self._timers[timer]
            out += self._step(timer, now)
        return out

    def transport_error(self, now: float) -> list[TxOutput]:
        return self._step(I.TRANSPORT_ERROR, now)

    def _step(
        self, inp: Input, now: float, message: Request | Response | None = None
    ) -> list[TxOutput]:
        row = TRANSITIONS.get((self.kind, self.state, inp))
        if row is None:
            if inp in NETWORK_INPUTS[self.kind] or inp.name.startswith("TIMER"):
                raise AssertionError(f"table gap: {self.kind.name} {self.state.name} {inp.name}")
            raise LocalProtocolError(
                f"{inp.name} is not allowed in {self.kind.name} {self.state.name}"
            )
        state, actions = row
        out: list[TxOutput] = []
        for action in actions:
            self._act(action, now, message, out)
        if state is S.TERMINATED and self.state is not S.TERMINATED:
            self._timers.clear()
            out.append(Terminated())
        self.state = state
        return out

    def _arm(self, timer: Input, now: float, duration: float) -> None:
        self._timers[timer] = now + duration

    def _act(
        self, action: Action, now: float, message: Request | Response | None, out: list[TxOutput]
    ) -> None:
        t = self.timers
        match action:  # the most frequent first: each case is one comparison
            case A.SEND_RESPONSE | A.SEND_ACK | A.SEND_REQUEST:
                self._send_cached(action, out)
            case A.START_G_2XX:  # §13.3.1.4: "even if the transport at the UAS is reliable"
                self._interval = t.t1
                self._arm(I.TIMER_G, now, t.t1)
            case A.START_L:
                self._arm(I.TIMER_L, now, 64 * t.t1)
            case A.START_J:
                self._arm(I.TIMER_J, now, 0.0 if self.reliable else 64 * t.t1)
            case A.STOP_RETRANSMIT:
                self._timers.pop(_RETRANSMIT_TIMER[self.kind], None)
            case A.MARK_ACKED:
                self._acked = True
            case A.REPORT_TIMEOUT_UNLESS_ACKED:
                if not self._acked:
                    out.append(TimedOut())
            case A.PASS_TO_TU:
                assert isinstance(message, Response)
                out.append(ToTransactionUser(message))
            case A.START_A | A.START_E | A.START_G:
                if not self.reliable:  # §17.1.1.2: no retransmission over reliable transports
                    self._interval = t.t1
                    self._arm(_RETRANSMIT_TIMER[self.kind], now, t.t1)
            case A.DOUBLE_A:
                self._interval *= 2
                self._arm(I.TIMER_A, now, self._interval)
            case A.DOUBLE_E | A.DOUBLE_G:
                self._interval = min(self._interval * 2, t.t2)
                self._arm(_RETRANSMIT_TIMER[self.kind], now, self._interval)
            case A.E_AT_T2:
                if not self.reliable:
                    self._interval = t.t2
                    self._arm(I.TIMER_E, now, t.t2)
            case A.START_B | A.START_F | A.START_H:
                self._arm(_TIMEOUT_TIMER[self.kind], now, 64 * t.t1)
            case A.START_D:
                self._arm(I.TIMER_D, now, 0.0 if self.reliable else max(32.0, 64 * t.t1))
            case A.START_I:
                self._arm(I.TIMER_I, now, 0.0 if self.reliable else t.t4)
            case A.START_K:
                self._arm(I.TIMER_K, now, 0.0 if self.reliable else t.t4)
            case A.START_M:
                self._arm(I.TIMER_M, now, 64 * t.t1)
            case A.STOP_TIMEOUT:
                self._timers.pop(_TIMEOUT_TIMER[self.kind], None)
            case A.REPORT_TIMEOUT:
                out.append(TimedOut())
            case A.REPORT_TRANSPORT_ERROR:
                out.append(TransportFailed())

    def _send_cached(self, action: Action, out: list[TxOutput]) -> None:
        raise NotImplementedError


class ClientTransaction(_Transaction):
    """A request we send, and its responses."""

    __slots__ = ("_ack", "request")

    def __init__(
        self, request: Request, *, reliable: bool, now: float, timers: TimerConfig = TimerConfig()
    ) -> None:
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        super().__init__(kind, reliable=reliable, timers=timers)
        self.request = request
        self.key = client_key(request)
        self._ack: Request | None = None

    def start(self, now: float) -> list[TxOutput]:
        """Send the request and arm A/B (INVITE) or E/F."""
        self._act(A.START_A if self.kind is Kind.INVITE_CLIENT else A.START_E, now, None, [])
        self._act(A.START_B, now, None, [])
        return [Transmit(self.request)]

    def receive_response(self, response: Response, now: float) -> list[TxOutput]:
        status = response.status
        inp = I.RECV_1XX if status < 200 else I.RECV_2XX if status < 300 else I.RECV_300_699
        if inp is I.RECV_300_699 and self.kind is Kind.INVITE_CLIENT and self._ack is None:
            self._ack = ack_for(self.request, response)
        return self._step(inp, now, response)

    def _send_cached(self, action: Action, out: list[TxOutput]) -> None:
        if action is A.SEND_REQUEST:
            out.append(Transmit(self.request))
            return
        assert action is A.SEND_ACK and self._ack is not None
        out.append(Transmit(self._ack))


class ServerTransaction(_Transaction):
    """A request we received, and the responses we give."""

    __slots__ = ("last_response", "request")

    def __init__(
        self, request: Request, *, reliable: bool, now: float, timers: TimerConfig = TimerConfig()
    ) -> None:
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        super().__init__(kind, reliable=reliable, timers=timers)
        self.key = server_key(request)
        self.request: Request | None = request
        """The request, until :meth:`release`."""
        self.last_response: Response | bytes | None = None

    def receive_request(self, request: Request, now: float) -> list[TxOutput]:
        """A retransmission of our request, or (INVITE) the ACK of a non-2xx final."""
        return self._step(I.ACK if request.method == "ACK" else I.REQUEST, now)

    def send_response(self, response: Response, now: float) -> list[TxOutput]:
        status = response.status
        inp = I.TU_1XX if status < 200 else I.TU_2XX if status < 300 else I.TU_300_699
        if (self.kind, self.state, inp) not in TRANSITIONS:
            raise LocalProtocolError(f"cannot send {status} in {self.kind.name} {self.state.name}")
        self.last_response = response
        return self._step(inp, now, response)

    def ack_2xx(self, now: float) -> list[TxOutput]:
        return self._step(I.ACK_2XX, now)

    def retire(self) -> float | None:
        """After :meth:`ack_2xx`: the Accepted state has only INVITE retransmissions left to absorb,
        which the endpoint does with the key alone (``entries.Acknowledged``). Returns Timer L's
        deadline, until which the key must absorb, and ends this object; None, and nothing changes,
        outside the Accepted state."""
        if self.state is not S.ACCEPTED:
            return None
        until = self._timers.get(I.TIMER_L)
        self._timers.clear()
        self.state = S.TERMINATED
        self.request = self.last_response = None
        return until

    def release(self, wire: bytes) -> None:
        """The final response is sent and ``wire`` is how it was written: from now on only
        retransmissions are answered, with those bytes. The parsed request and response go: they
        are most of what a transaction holds, and an INVITE's lasts 32 s after its 2xx."""
        self.request = None
        self.last_response = wire

    def _send_cached(self, action: Action, out: list[TxOutput]) -> None:
        if self.last_response is not None:  # a retransmission before any response: nothing to send
            out.append(Transmit(self.last_response))


# -- matching (§17.1.3, §17.2.3) -----------------------------------------------------------------
MAGIC_COOKIE = "z9hG4bK"


def server_key(request: Request, method: str | None = None) -> tuple[object, ...]:
    """The server transaction a request belongs to. ACK maps to its INVITE; ``method`` overrides."""
    via = request.top_via
    if method is None:
        method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return (branch, via.host, via.port, method)
    # RFC 2543 peers (no magic cookie): Request-URI, From tag, Call-ID, CSeq number and top Via. The
    # To tag is left out: the INVITE has none and its ACK carries ours.
    return (
        "rfc2543",
        request.raw_uri,
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        via.host,
        via.port,
        branch,
        method,
    )


def invite_key_for_cancel(cancel: Request) -> tuple[object, ...]:
    """The key of the INVITE server transaction a CANCEL targets (same branch, §9.2)."""
    return server_key(cancel, "INVITE")


def client_key(message: Request | Response) -> tuple[object, ...]:
    """Our client transaction: the top Via branch and the CSeq method (ACK → INVITE)."""
    method = message.cseq.method
    return (message.top_via.branch, "INVITE" if method == "ACK" else method)


def ack_for(request: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (§17.1.1.3): same Request-URI, Call-ID, From, CSeq
    number, the response's To (with its tag), our top Via only, and our Route headers."""
    h = Headers()
    h.add("via", str(request.top_via))
    h.add("max-forwards", "70")
    for route in request.headers.get_all("route"):
        h.add("route", route)
    h.add("from", request.headers.get("from") or "")
    h.add("to", response.headers.get("to") or "")
    h.add("call-id", request.call_id)
    h.add("cseq", str(CSeq(request.cseq.seq, "ACK")))
    return Request("ACK", request.raw_uri, h)
