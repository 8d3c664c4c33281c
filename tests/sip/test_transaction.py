"""RFC 3261 §17 transactions (with RFC 6026 Accepted), stepped by hand: every timer, every table row,
and Hypothesis over random input sequences. Time only moves as ``now = tx.next_deadline()``."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.sip.errors import LocalProtocolError
from bridge.sip.message import Request, Response, response_to
from bridge.sip.parser import parse_message
from bridge.sip.transaction import (
    INITIAL,
    NETWORK_INPUTS,
    TRANSITIONS,
    TU_INPUTS,
    Action,
    ClientTransaction,
    Input,
    Kind,
    ServerTransaction,
    State,
    Terminated,
    TimedOut,
    TimerConfig,
    ToTransactionUser,
    Transmit,
    TransportFailed,
    TxOutput,
)

S, I, A = State, Input, Action  # noqa: E741  (the table's own shorthand)
T1, T2, T4 = TimerConfig().t1, TimerConfig().t2, TimerConfig().t4  # 0.5 s, 4 s, 5 s
CLIENTS = (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT)
SERVERS = (Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER)
Tx = ClientTransaction | ServerTransaction


def request(method: str) -> Request:
    cseq_method = "INVITE" if method == "ACK" else method
    to_tag = ";tag=b1" if method == "ACK" else ""
    message = parse_message(
        (
            f"{method} sip:bob@example.com SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKtx1\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:alice@example.com>;tag=a1\r\n"
            f"To: <sip:bob@example.com>{to_tag}\r\n"
            "Call-ID: tx-test@192.0.2.1\r\n"
            f"CSeq: 1 {cseq_method}\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Request)
    return message


INVITE, OPTIONS, ACK = request("INVITE"), request("OPTIONS"), request("ACK")  # ACK: of a non-2xx
STATUS = {
    I.RECV_1XX: 180,
    I.RECV_2XX: 200,
    I.RECV_300_699: 486,
    I.TU_1XX: 180,
    I.TU_2XX: 200,
    I.TU_300_699: 486,
}


def reply(req: Request, status: int) -> Response:
    return response_to(req, status, to_tag=None if status == 100 else "b1")


def make(kind: Kind, *, reliable: bool = False) -> Tx:
    """A transaction at t=0: a client has sent its request; an INVITE server has answered 100 at
    once, as the endpoint does."""
    req = INVITE if kind in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER) else OPTIONS
    if kind in CLIENTS:
        ctx = ClientTransaction(req, reliable=reliable, now=0.0)
        assert ctx.start(0.0) == [Transmit(req)]
        return ctx
    stx = ServerTransaction(req, reliable=reliable, now=0.0)
    if kind is Kind.INVITE_SERVER:
        stx.send_response(reply(req, 100), 0.0)
    return stx


def client(kind: Kind, *, reliable: bool = False) -> ClientTransaction:
    tx = make(kind, reliable=reliable)
    assert isinstance(tx, ClientTransaction)
    return tx


def server(kind: Kind, *, reliable: bool = False) -> ServerTransaction:
    tx = make(kind, reliable=reliable)
    assert isinstance(tx, ServerTransaction)
    return tx


def current_state(tx: Tx) -> State:
    """The state, read through a call so that mypy does not narrow it across inputs."""
    return tx.state


def apply(tx: Tx, inp: Input, now: float) -> list[TxOutput]:
    """Feed one input that is not a timer."""
    if inp is I.TRANSPORT_ERROR:
        return tx.transport_error(now)
    if isinstance(tx, ClientTransaction):
        return tx.receive_response(reply(tx.request, STATUS[inp]), now)
    # Only retire() and release() drop the request, and no input here follows either.
    assert tx.request is not None
    match inp:
        case I.REQUEST:
            return tx.receive_request(tx.request, now)
        case I.ACK:
            return tx.receive_request(ACK, now)
        case I.ACK_2XX:
            return tx.ack_2xx(now)
        case _:
            return tx.send_response(reply(tx.request, STATUS[inp]), now)


def fire(tx: Tx) -> tuple[float, list[TxOutput]]:
    now = tx.next_deadline()
    assert now is not None
    return now, tx.handle_timer(now)


def run_out(tx: Tx) -> list[tuple[float, list[TxOutput]]]:
    """Fire every timer until none is left."""
    steps = []
    while tx.next_deadline() is not None:
        steps.append(fire(tx))
        assert len(steps) < 100
    return steps


# -- 1. INVITE client (§17.1.1, RFC 6026 §7.2) ---------------------------------------------------
def test_invite_client_timer_a_doubles_without_cap_until_timer_b() -> None:
    tx = client(Kind.INVITE_CLIENT)
    steps = run_out(tx)
    # §17.1.1.2: intervals 0.5, 1, 2, 4, 8, 16 s double past T2 (only non-INVITE requests and INVITE
    # responses are capped at T2); Timer B ends it at 64*T1 = 32 s.
    assert [t for t, _ in steps] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 32.0]
    assert all(out == [Transmit(INVITE)] for _, out in steps[:-1])
    assert steps[-1][1] == [TimedOut(), Terminated()]
    assert tx.state is S.TERMINATED and tx.next_deadline() is None


def test_invite_client_provisional_stops_timers_a_and_b() -> None:
    tx = client(Kind.INVITE_CLIENT)
    fire(tx)
    ringing = reply(INVITE, 180)
    assert tx.receive_response(ringing, 1.0) == [ToTransactionUser(ringing)]
    # Figure 5: B runs only in Calling; a Proceeding INVITE waits for the TU (CANCEL, Timer C).
    assert tx.state is S.PROCEEDING and tx.next_deadline() is None
    again = reply(INVITE, 183)
    assert tx.receive_response(again, 2.0) == [ToTransactionUser(again)]


@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "reliable"])
@pytest.mark.parametrize("proceeding", [False, True], ids=["calling", "proceeding"])
def test_invite_client_2xx_is_accepted_until_timer_m(reliable: bool, proceeding: bool) -> None:
    tx = client(Kind.INVITE_CLIENT, reliable=reliable)
    if proceeding:
        tx.receive_response(reply(INVITE, 180), 0.1)
    ok = reply(INVITE, 200)
    assert tx.receive_response(ok, 0.2) == [ToTransactionUser(ok)]
    assert tx.state is S.ACCEPTED and tx.next_deadline() == 0.2 + 64 * T1  # RFC 6026 Timer M
    again = reply(INVITE, 200)  # a retransmitted (or forked) 2xx: the TU re-sends its ACK
    assert tx.receive_response(again, 1.0) == [ToTransactionUser(again)]
    assert tx.receive_response(reply(INVITE, 180), 1.0) == []
    assert tx.receive_response(reply(INVITE, 486), 1.0) == []
    assert fire(tx) == (32.2, [Terminated()])


@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "reliable"])
@pytest.mark.parametrize("proceeding", [False, True], ids=["calling", "proceeding"])
def test_invite_client_non_2xx_final_is_acked_and_timer_d_absorbs(
    reliable: bool, proceeding: bool
) -> None:
    tx = client(Kind.INVITE_CLIENT, reliable=reliable)
    if proceeding:
        tx.receive_response(reply(INVITE, 180), 0.1)
    busy = reply(INVITE, 486)
    out = tx.receive_response(busy, 0.2)
    assert len(out) == 2 and isinstance(out[0], Transmit) and out[1] == ToTransactionUser(busy)
    ack = out[0].message
    # §17.1.1.3: same Request-URI, branch and CSeq number, the response's To tag, method ACK.
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.raw_uri == INVITE.raw_uri
    assert ack.top_via.branch == "z9hG4bKtx1" and ack.to.tag == "b1"
    assert (ack.cseq.seq, ack.cseq.method) == (1, "ACK")
    assert tx.state is S.COMPLETED
    # Timer D: at least 32 s over UDP, to absorb retransmitted finals; zero over reliable transports.
    assert tx.next_deadline() == 0.2 + (0.0 if reliable else 32.0)
    assert tx.receive_response(reply(INVITE, 486), 0.2) == [Transmit(ack)]  # the same ACK again
    assert tx.receive_response(reply(INVITE, 180), 0.2) == []
    assert tx.receive_response(reply(INVITE, 200), 0.2) == []
    assert fire(tx) == (0.2 if reliable else 32.2, [Terminated()])
    assert tx.receive_response(reply(INVITE, 486), 40.0) == []


# -- 2. non-INVITE client (§17.1.2) --------------------------------------------------------------
def test_non_invite_client_timer_e_is_capped_at_t2_until_timer_f() -> None:
    tx = client(Kind.NON_INVITE_CLIENT)
    steps = run_out(tx)
    # §17.1.2.2: E doubles from T1 to T2 = 4 s and stays there; F ends it at 64*T1.
    assert [t for t, _ in steps] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert all(out == [Transmit(OPTIONS)] for _, out in steps[:-1])
    assert steps[-1][1] == [TimedOut(), Terminated()]


def test_non_invite_client_proceeding_retransmits_every_t2() -> None:
    tx = client(Kind.NON_INVITE_CLIENT)
    fire(tx)  # 0.5 s; the next is due at 1.5 s
    trying = reply(OPTIONS, 100)
    assert tx.receive_response(trying, 0.6) == [ToTransactionUser(trying)]
    assert tx.state is S.PROCEEDING
    # §17.1.2.2: the running Timer E is kept; each time it fires in Proceeding it is reset to T2.
    assert tx.next_deadline() == 1.5
    steps = run_out(tx)
    assert [t for t, _ in steps] == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5, 32.0]
    assert all(out == [Transmit(OPTIONS)] for _, out in steps[:-1])
    assert steps[-1][1] == [TimedOut(), Terminated()]  # F fires in Proceeding too


@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "reliable"])
@pytest.mark.parametrize("status", [200, 404])
@pytest.mark.parametrize("proceeding", [False, True], ids=["trying", "proceeding"])
def test_non_invite_client_final_completes_and_timer_k_absorbs(
    reliable: bool, status: int, proceeding: bool
) -> None:
    tx = client(Kind.NON_INVITE_CLIENT, reliable=reliable)
    if proceeding:
        tx.receive_response(reply(OPTIONS, 100), 0.1)
    final = reply(OPTIONS, status)
    assert tx.receive_response(final, 1.0) == [ToTransactionUser(final)]
    assert tx.state is S.COMPLETED
    assert tx.next_deadline() == 1.0 + (0.0 if reliable else T4)  # Timer K, E and F stopped
    assert tx.receive_response(reply(OPTIONS, status), 1.0) == []
    assert tx.receive_response(reply(OPTIONS, 100), 1.0) == []
    assert fire(tx) == (1.0 if reliable else 6.0, [Terminated()])


# -- 3. INVITE server (§17.2.1, RFC 6026 §7.1) ---------------------------------------------------
def test_invite_server_retransmitted_invite_resends_the_last_provisional() -> None:
    tx = ServerTransaction(INVITE, reliable=False, now=0.0)
    assert tx.receive_request(INVITE, 0.0) == []  # nothing sent yet, so nothing to repeat
    trying, ringing = reply(INVITE, 100), reply(INVITE, 180)
    assert tx.send_response(trying, 0.0) == [Transmit(trying)]
    assert tx.receive_request(INVITE, 0.2) == [Transmit(trying)]
    assert tx.send_response(ringing, 0.3) == [Transmit(ringing)]
    assert tx.receive_request(INVITE, 0.5) == [Transmit(ringing)]
    assert tx.receive_request(ACK, 0.6) == []  # a stray ACK before any final is absorbed
    assert tx.state is S.PROCEEDING and tx.next_deadline() is None  # no timer for provisionals


def test_invite_server_timer_g_repeats_the_final_until_ack_then_timer_i() -> None:
    tx = server(Kind.INVITE_SERVER)
    busy = reply(INVITE, 486)
    assert tx.send_response(busy, 0.0) == [Transmit(busy)]
    assert tx.state is S.COMPLETED
    steps = [fire(tx) for _ in range(5)]
    assert [t for t, _ in steps] == [0.5, 1.5, 3.5, 7.5, 11.5]  # T1 doubling, capped at T2
    assert all(out == [Transmit(busy)] for _, out in steps)
    assert tx.receive_request(INVITE, 12.0) == [Transmit(busy)]  # retransmitted INVITE
    assert tx.receive_request(ACK, 12.0) == []
    assert current_state(tx) is S.CONFIRMED
    assert tx.next_deadline() == 12.0 + T4  # G and H stopped; Timer I absorbs ACK retransmissions
    assert tx.receive_request(ACK, 13.0) == []
    assert tx.receive_request(INVITE, 13.0) == []
    assert fire(tx) == (17.0, [Terminated()])


@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "reliable"])
def test_invite_server_timer_h_reports_a_missing_ack(reliable: bool) -> None:
    tx = server(Kind.INVITE_SERVER, reliable=reliable)
    busy = reply(INVITE, 486)
    tx.send_response(busy, 0.0)
    steps = run_out(tx)
    assert steps[-1] == (64 * T1, [TimedOut(), Terminated()])  # H: 64*T1 on every transport
    assert all(out == [Transmit(busy)] for _, out in steps[:-1])
    assert len(steps) - 1 == (0 if reliable else 10)  # G at 0.5, 1.5, 3.5, 7.5 ... 31.5


def test_invite_server_ack_over_reliable_transport_ends_at_once() -> None:
    tx = server(Kind.INVITE_SERVER, reliable=True)
    tx.send_response(reply(INVITE, 486), 0.0)
    assert tx.next_deadline() == 64 * T1  # only Timer H: no G over reliable transports
    assert tx.receive_request(ACK, 1.0) == []
    assert tx.state is S.CONFIRMED and fire(tx) == (1.0, [Terminated()])  # Timer I = 0


@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "reliable"])
def test_invite_server_2xx_is_repeated_in_accepted_until_acked(reliable: bool) -> None:
    tx = server(Kind.INVITE_SERVER, reliable=reliable)
    ok = reply(INVITE, 200)
    assert tx.send_response(ok, 0.0) == [Transmit(ok)]
    assert tx.state is S.ACCEPTED
    # The project's design (docs/decisions.md): the transaction re-sends the 2xx, T1 doubling to T2,
    # "even if the transport at the UAS is reliable" (RFC 3261 §13.3.1.4: there may be UDP hops).
    steps = [fire(tx) for _ in range(5)]
    assert [t for t, _ in steps] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert all(out == [Transmit(ok)] for _, out in steps)
    assert tx.receive_request(INVITE, 12.0) == [Transmit(ok)]  # retransmitted INVITE
    assert tx.receive_request(ACK, 12.0) == []  # an ACK with the INVITE's branch: the dialog's
    assert tx.send_response(reply(INVITE, 200), 12.0) != []  # the TU may pass more 2xx (6026 §8.7)
    assert tx.ack_2xx(13.0) == []
    assert tx.next_deadline() == 64 * T1  # G stopped; only Timer L is left
    assert tx.receive_request(INVITE, 14.0) != []
    assert fire(tx) == (32.0, [Terminated()])  # acknowledged: no TimedOut


def test_invite_server_retires_once_acknowledged_and_tells_when_timer_l_is_due() -> None:
    tx = server(Kind.INVITE_SERVER)
    assert tx.retire() is None  # nothing accepted yet: nothing changes
    assert tx.state is S.PROCEEDING
    tx.send_response(reply(INVITE, 200), 1.0)
    tx.ack_2xx(2.0)
    assert tx.retire() == 1.0 + 64 * T1  # the endpoint's key absorbs until then
    assert current_state(tx) is S.TERMINATED and tx.next_deadline() is None
    assert tx.request is None and tx.last_response is None


def test_invite_server_timer_l_reports_a_2xx_never_acknowledged() -> None:
    tx = server(Kind.INVITE_SERVER)
    tx.send_response(reply(INVITE, 200), 0.0)
    steps = run_out(tx)
    assert steps[-1] == (32.0, [TimedOut(), Terminated()])  # the endpoint then sends BYE


def test_invite_server_refuses_what_the_table_does_not_list() -> None:
    tx = server(Kind.INVITE_SERVER)
    with pytest.raises(LocalProtocolError):
        tx.ack_2xx(0.0)  # nothing to acknowledge
    busy = reply(INVITE, 486)
    tx.send_response(busy, 0.0)
    for status in (180, 200, 500):
        with pytest.raises(LocalProtocolError):
            tx.send_response(reply(INVITE, status), 0.1)
    assert tx.last_response is busy and tx.state is S.COMPLETED


# -- 4. non-INVITE server (§17.2.2) --------------------------------------------------------------
@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "reliable"])
def test_non_invite_server_trying_proceeding_completed(reliable: bool) -> None:
    tx = server(Kind.NON_INVITE_SERVER, reliable=reliable)
    assert tx.receive_request(OPTIONS, 0.0) == []  # Trying absorbs retransmissions
    trying = reply(OPTIONS, 100)
    assert tx.send_response(trying, 0.1) == [Transmit(trying)]
    assert tx.state is S.PROCEEDING
    assert tx.receive_request(OPTIONS, 0.2) == [Transmit(trying)]
    assert tx.next_deadline() is None  # the client retransmits; the server only answers
    ok = reply(OPTIONS, 200)
    assert tx.send_response(ok, 1.0) == [Transmit(ok)]
    assert current_state(tx) is S.COMPLETED
    assert tx.next_deadline() == 1.0 + (0.0 if reliable else 64 * T1)  # Timer J
    assert tx.receive_request(OPTIONS, 1.0) == [Transmit(ok)]
    with pytest.raises(LocalProtocolError):  # §17.2.2: further finals are the TU's mistake
        tx.send_response(reply(OPTIONS, 500), 1.0)
    assert fire(tx) == (1.0 if reliable else 33.0, [Terminated()])
    assert tx.receive_request(OPTIONS, 40.0) == []


@pytest.mark.parametrize("status", [200, 404])
def test_non_invite_server_final_straight_from_trying(status: int) -> None:
    tx = server(Kind.NON_INVITE_SERVER)
    final = reply(OPTIONS, status)
    assert tx.send_response(final, 0.0) == [Transmit(final)]
    assert tx.state is S.COMPLETED and tx.next_deadline() == 64 * T1


# -- 5. reliable transports: no retransmission timer ---------------------------------------------
@pytest.mark.parametrize("kind", CLIENTS, ids=lambda k: k.name)
def test_reliable_client_arms_only_its_timeout(kind: Kind) -> None:
    tx = make(kind, reliable=True)
    assert run_out(tx) == [(64 * T1, [TimedOut(), Terminated()])]  # B or F; never A or E


# -- the tables themselves -----------------------------------------------------------------------
def inputs_for(kind: Kind) -> tuple[Input, ...]:
    """The inputs other than timers that a transaction of ``kind`` can be given."""
    tu = () if kind in CLIENTS else tuple(sorted(TU_INPUTS, key=lambda i: i.value))
    return (*NETWORK_INPUTS[kind], *tu, I.TRANSPORT_ERROR)


def states_of(kind: Kind) -> set[State]:
    return {state for k, state, _ in TRANSITIONS if k is kind}


def shortest_paths(kind: Kind) -> dict[State, tuple[Input, ...]]:
    paths: dict[State, tuple[Input, ...]] = {INITIAL[kind]: ()}
    queue = deque([INITIAL[kind]])
    while queue:
        state = queue.popleft()
        for inp in inputs_for(kind):
            row = TRANSITIONS.get((kind, state, inp))
            if row is not None and row[0] not in paths:
                paths[row[0]] = (*paths[state], inp)
                queue.append(row[0])
    return paths


PATHS = {kind: shortest_paths(kind) for kind in Kind}
TIMERS = frozenset(i for i in Input if i.name.startswith("TIMER_"))
RETRANSMIT = frozenset({I.TIMER_A, I.TIMER_E, I.TIMER_G})


def drive(kind: Kind, state: State, *, reliable: bool = False) -> Tx:
    tx = make(kind, reliable=reliable)
    for inp in PATHS[kind][state]:
        apply(tx, inp, 0.0)
    assert tx.state is state
    return tx


def check_actions(out: list[TxOutput], actions: tuple[Action, ...], terminates: bool) -> None:
    """What a row's actions promise is what comes out (paths never acknowledge a 2xx)."""
    types = [type(o) for o in out]
    assert (ToTransactionUser in types) == (A.PASS_TO_TU in actions)
    assert (TransportFailed in types) == (A.REPORT_TRANSPORT_ERROR in actions)
    reports = {A.REPORT_TIMEOUT, A.REPORT_TIMEOUT_UNLESS_ACKED}
    assert (TimedOut in types) == bool(reports & set(actions))
    sends = {A.SEND_REQUEST, A.SEND_RESPONSE, A.SEND_ACK}
    assert (Transmit in types) == bool(sends & set(actions))
    assert out.count(Terminated()) == int(terminates)
    assert Terminated() not in out[:-1]


def row_id(key: tuple[Kind, State, Input]) -> str:
    return "-".join(part.name for part in key)


ROWS = sorted(TRANSITIONS.items(), key=lambda r: tuple(part.value for part in r[0]))


@pytest.mark.parametrize(
    ("key", "row"),
    [pytest.param(key, row, id=row_id(key)) for key, row in ROWS if key[2] not in TIMERS],
)
def test_each_listed_input_moves_to_the_listed_state(
    key: tuple[Kind, State, Input], row: tuple[State, tuple[Action, ...]]
) -> None:
    kind, state, inp = key
    tx = drive(kind, state)
    out = apply(tx, inp, 1.0)
    assert tx.state is row[0]
    check_actions(out, row[1], row[0] is S.TERMINATED and state is not S.TERMINATED)


@pytest.mark.parametrize(
    ("key", "row"),
    [pytest.param(key, row, id=row_id(key)) for key, row in ROWS if key[2] in TIMERS],
)
def test_each_listed_timer_is_armed_and_moves_to_the_listed_state(
    key: tuple[Kind, State, Input], row: tuple[State, tuple[Action, ...]]
) -> None:
    kind, state, timer = key
    tx = drive(kind, state)  # over UDP, where every timer is in use
    armed = tx._timers  # white box: fire this row's timer alone
    assert timer in armed, f"{timer.name} is listed but never armed in {state.name}"
    for other in [t for t in armed if t is not timer]:
        del armed[other]
    out = tx.handle_timer(armed[timer])
    assert tx.state is row[0]
    check_actions(out, row[1], row[0] is S.TERMINATED)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
def test_every_state_is_reachable_and_hears_every_network_input(kind: Kind) -> None:
    assert set(PATHS[kind]) == states_of(kind)
    for state in states_of(kind):
        for inp in (*NETWORK_INPUTS[kind], I.TRANSPORT_ERROR):
            assert (kind, state, inp) in TRANSITIONS, f"{state.name} {inp.name}"
        for reliable in (False, True):  # each armed timer has a row in that state
            tx = drive(kind, state, reliable=reliable)
            assert all((kind, state, t) in TRANSITIONS for t in tx._timers)
    if kind in CLIENTS:
        assert not any(k is kind and i in TU_INPUTS for k, _, i in TRANSITIONS)


@pytest.mark.parametrize("kind", SERVERS, ids=lambda k: k.name)
def test_unlisted_tu_inputs_raise_and_change_nothing(kind: Kind) -> None:
    for state in PATHS[kind]:
        for inp in TU_INPUTS - {i for k, s, i in TRANSITIONS if (k, s) == (kind, state)}:
            tx = drive(kind, state)
            assert isinstance(tx, ServerTransaction)
            last, deadline = tx.last_response, tx.next_deadline()
            with pytest.raises(LocalProtocolError):
                apply(tx, inp, 1.0)
            assert (tx.state, tx.last_response, tx.next_deadline()) == (state, last, deadline)


# -- 6. transport errors (§17.1.4, §17.2.4) ------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "state"),
    [
        pytest.param(k, s, id=f"{k.name}-{s.name}")
        for (k, s, i), _ in ROWS
        if i is I.TRANSPORT_ERROR
    ],
)
def test_transport_error(kind: Kind, state: State) -> None:
    tx = drive(kind, state)
    out = tx.transport_error(1.0)
    if (
        TRANSITIONS[(kind, state, I.TRANSPORT_ERROR)][0] is S.TERMINATED
        and state is not S.TERMINATED
    ):
        assert out == [TransportFailed(), Terminated()]
        assert tx.state is S.TERMINATED and tx.next_deadline() is None
    else:  # nothing of this transaction's was in flight (the endpoint tells every one bound there)
        assert out == [] and tx.state is state


# -- 7. Hypothesis: random inputs in any order ---------------------------------------------------
def after_timers(kind: Kind, state: State) -> set[State]:
    """States reachable from ``state`` through timer rows alone (one call may fire several)."""
    seen, todo = {state}, [state]
    while todo:
        current = todo.pop()
        for (k, s, i), (nxt, _) in TRANSITIONS.items():
            if (k, s) == (kind, current) and i in TIMERS and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_inputs_keep_the_invariants(kind: Kind, data: st.DataObject) -> None:
    reliable = data.draw(st.booleans(), label="reliable")
    choices: list[Input | None] = [None, *inputs_for(kind)]  # None: fire the next timer
    steps = data.draw(
        st.lists(st.tuples(st.sampled_from(choices), st.floats(0.0, 8.0)), max_size=40),
        label="steps",
    )
    tx = make(kind, reliable=reliable)
    now = 0.0
    for inp, dt in steps:
        before, deadline = tx.state, tx.next_deadline()
        if inp is None:
            if deadline is None:
                continue
            now = deadline
            out = tx.handle_timer(now)
            assert tx.state in after_timers(kind, before)
            after = tx.next_deadline()
            assert after is None or after > now  # everything due has fired
            if reliable and not (kind is Kind.INVITE_SERVER and before is S.ACCEPTED):
                assert not any(isinstance(o, Transmit) for o in out)
        else:
            # Time passes, but never beyond a pending timer: the endpoint would have fired it.
            now = now + dt if deadline is None else min(now + dt, deadline)
            row = TRANSITIONS.get((kind, before, inp))
            if row is None:  # only the TU can be refused; nothing from the network raises
                assert inp in TU_INPUTS and isinstance(tx, ServerTransaction)
                last = tx.last_response
                with pytest.raises(LocalProtocolError):
                    apply(tx, inp, now)
                assert (tx.state, tx.last_response, tx.next_deadline()) == (before, last, deadline)
                continue
            out = apply(tx, inp, now)
            assert tx.state is row[0]
            assert not any(isinstance(o, TimedOut) for o in out)
            after = tx.next_deadline()
            assert after is None or after >= now
        if before is S.TERMINATED:
            assert out == []
        if tx.state is S.TERMINATED:
            assert tx.next_deadline() is None
        entered = before is not S.TERMINATED and tx.state is S.TERMINATED
        assert out.count(Terminated()) == int(entered) and Terminated() not in out[:-1]
        sent = [id(o.message) for o in out if isinstance(o, Transmit)]
        assert len(set(sent)) == len(sent)  # never the same message twice in one batch
        if kind in SERVERS:
            assert not any(isinstance(o, ToTransactionUser) for o in out)
        if reliable:  # only the 2xx of an INVITE server is retransmitted (§13.3.1.4)
            armed = set(tx._timers) & RETRANSMIT
            assert not armed or (kind is Kind.INVITE_SERVER and tx.state is S.ACCEPTED)
