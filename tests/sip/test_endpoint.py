"""The endpoint end to end: RFC 4475 answers on the wire, RFC 3665 flows, UAS rules of RFC 3261."""

from __future__ import annotations

import csv
import itertools

import pytest

from bridge.sip.address import Address, Transport
from bridge.sip.dialog import DialogId
from bridge.sip.endpoint import Endpoint
from bridge.sip.errors import LocalProtocolError
from bridge.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    EndReason,
    GlareRetryDue,
    InviteCancelled,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
)
from bridge.sip.message import Request, Response
from bridge.sip.parser import parse_message
from bridge.sip.uas import UasPolicy
from tests.conftest import CORPUS
from tests.sip.sipnet import PHONE, drain_events, make_endpoint, sent, statuses


def manifest() -> list[dict[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


# Where the RFC allows a choice, the answers we give (400 is always acceptable for malformed input).
ALSO_OK = {"mismatch02.dat": {400, 501}, "sdp01.dat": {406}, "badvers.dat": {505}}


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
@pytest.mark.parametrize("row", manifest(), ids=lambda r: r["file"])
def test_rfc4475_answer_on_the_wire(row: dict[str, str], transport: Transport) -> None:
    endpoint = make_endpoint()
    source = Address(transport, "127.0.0.1", 5070)
    data = (CORPUS / row["file"]).read_bytes()
    if transport is Transport.TCP and row["file"] in (
        "clerr.dat",
        "ncl.dat",
        "mcl01.dat",
        "dblreq.dat",
    ):
        pytest.skip("framing-level case: covered by the stream framer tests")
    endpoint.receive(data, source, 0.0)
    out = sent(endpoint)
    events = drain_events(endpoint)
    # Never answer anywhere but where the message came from (RFC 4475 Vias name 192.0.2.x hosts).
    assert all(addr.host == "127.0.0.1" for _, addr in out)
    finals = [s for s in statuses(out) if s >= 200]
    expect = row["expect"]
    if expect == "drop":
        assert out == []
    elif expect == "ok":
        assert 400 not in finals
        requests = [e for e in events if isinstance(e, RequestReceived)]
        # Well-formed: handed to the call layer, or refused for what it asks (405, 481, 501), not 400.
        assert requests or (finals and finals[0] in (405, 481, 501)), (finals, events)
    elif expect.isdigit():
        assert len(finals) == 1, finals
        assert finals[0] in {int(expect)} | ALSO_OK.get(row["file"], set())
    else:  # "any": parsed or rejected, but nothing else
        assert all(s >= 100 for s in statuses(out))


def test_unroutable_garbage_is_dropped_and_reported() -> None:
    endpoint = make_endpoint()
    endpoint.receive(b"\x00\xff garbage \r\n\r\n", PHONE, 0.0)
    assert sent(endpoint) == []
    events = drain_events(endpoint)
    assert len(events) == 1 and isinstance(events[0], MessageRejected) and events[0].status is None


# -- RFC 3665 flows as vector tables -------------------------------------------------------------
# Alice calls Bob; our endpoint is Bob's UA. Message text from RFC 3665 §3.1 (over UDP here).
ALICE = Address(Transport.UDP, "127.0.0.1", 5070)
F1 = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP client.atlanta.example.com:5070;branch=z9hG4bK74bf9\r\n"
    "Max-Forwards: 70\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@client.atlanta.example.com>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 0\r\n\r\n"
)


def alice(
    method: str, cseq: int, *, to_tag: str | None, branch: str, seq_method: str = ""
) -> bytes:
    to = "Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:bob@biloxi.example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP client.atlanta.example.com:5070;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
        f"To: {to}\r\n"
        "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
        f"CSeq: {cseq} {seq_method or method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_rfc3665_3_1_successful_session_and_bye() -> None:
    bob = make_endpoint()
    # F1 INVITE → 100 Trying at once, and the call layer is told.
    bob.receive(F1.replace("Content-Type: application/sdp\r\n", "").encode(), ALICE, 0.0)
    assert statuses(sent(bob)) == [100]
    (invite,) = drain_events(bob)
    assert isinstance(invite, RequestReceived) and invite.dialog is None
    # F2 180 Ringing, F3 200 OK: both carry Bob's To tag and a Contact.
    bob.respond(invite.request_id, 180, now=0.1)
    dialog = bob.respond(
        invite.request_id, 200, now=0.2, body=b"v=0\r\n", content_type="application/sdp"
    )
    (ringing, _), (ok, dest) = sent(bob)
    assert isinstance(ringing, Response) and isinstance(ok, Response)
    assert ringing.status == 180 and ok.status == 200
    assert ringing.to.tag == ok.to.tag == "t1" and ok.contacts and dest == ALICE
    assert dialog is not None and dialog.local_tag == "t1" and dialog.remote_tag == "9fxced76sl"
    # F4 ACK → the dialog is confirmed; the 2xx is no longer retransmitted.
    bob.receive(alice("ACK", 1, to_tag="t1", branch="z9hG4bK74bfa"), ALICE, 0.3)
    (confirmed,) = drain_events(bob)
    assert isinstance(confirmed, DialogConfirmed) and confirmed.dialog == dialog
    deadline = bob.get_timer()
    while deadline is not None and deadline < 40:
        bob.handle_timer(deadline)
        deadline = bob.get_timer()
    assert [s for s in statuses(sent(bob, 40)) if s == 200] == []
    # F5 BYE from Alice → 200, dialog terminated.
    bob.receive(alice("BYE", 2, to_tag="t1", branch="z9hG4bK74bfb"), ALICE, 41.0)
    assert statuses(sent(bob)) == [200]
    (ended,) = drain_events(bob)
    assert isinstance(ended, DialogTerminated) and ended.reason is EndReason.BYE_RECEIVED
    assert bob.dialog(dialog) is None


def test_rfc3665_2xx_retransmitted_until_ack_then_bye_without_ack() -> None:
    bob = make_endpoint()
    bob.receive(F1.encode(), ALICE, 0.0)
    (invite,) = drain_events(bob)
    assert isinstance(invite, RequestReceived)
    bob.respond(invite.request_id, 200, now=0.0, body=b"v=0\r\n", content_type="application/sdp")
    sent(bob)
    times = []
    byes = []
    while (deadline := bob.get_timer()) is not None and deadline <= 33:
        bob.handle_timer(deadline)
        out = sent(bob, deadline)
        if 200 in statuses(out):
            times.append(deadline)
        byes += [m for m, _ in out if isinstance(m, Request) and m.method == "BYE"]
    # T1-doubling, capped at T2 (RFC 3261 §13.3.1.4): 0.5, 1.5, 3.5, 7.5, 11.5 ...
    assert times[:4] == [0.5, 1.5, 3.5, 7.5]
    assert all(b - a <= 4.0 + 1e-9 for a, b in itertools.pairwise(times))
    ended = [e for e in drain_events(bob) if isinstance(e, DialogTerminated)]
    assert [e.reason for e in ended] == [EndReason.NO_ACK]
    # One BYE transaction (retransmitted by Timer E, since nobody answers it) to the caller.
    assert len({b.top_via.branch for b in byes}) == 1 and byes[0].to.tag == "9fxced76sl"


def test_rfc3665_3_8_busy_then_retransmission_gets_same_answer() -> None:
    bob = make_endpoint()
    bob.receive(F1.encode(), ALICE, 0.0)
    (invite,) = drain_events(bob)
    assert isinstance(invite, RequestReceived)
    sent(bob)
    bob.respond(invite.request_id, 486, now=0.1)
    ((busy, _),) = sent(bob)
    bob.receive(F1.encode(), ALICE, 0.2)  # retransmitted INVITE: the cached 486 again
    ((again, _),) = sent(bob)
    assert isinstance(busy, Response) and isinstance(again, Response)
    assert busy.status == again.status == 486 and busy.to.tag == again.to.tag
    bob.receive(alice("ACK", 1, to_tag=busy.to.tag, branch="z9hG4bK74bf9"), ALICE, 0.3)
    assert sent(bob) == []
    assert [type(e).__name__ for e in drain_events(bob)] == ["Retransmission"]


def test_after_the_final_answer_only_its_bytes_are_kept() -> None:
    """A transaction absorbing retransmissions (32 s for an INVITE's 2xx) holds the answer's wire
    form, not the parsed request and response; retransmissions get the very same bytes."""
    bob = make_endpoint()
    bob.receive(F1.encode(), ALICE, 0.0)
    (invite,) = drain_events(bob)
    assert isinstance(invite, RequestReceived)
    bob.datagrams_to_send(0.0)
    bob.respond(invite.request_id, 200, now=0.1, body=b"v=0\r\n", content_type="application/sdp")
    ((first, _),) = bob.datagrams_to_send(0.1)
    (entry,) = bob._server.values()
    assert entry.tx.request is None and entry.tx.last_response == first
    bob.receive(F1.encode(), ALICE, 0.2)  # the INVITE again: the 2xx again, byte for byte
    assert bob.datagrams_to_send(0.2) == [(first, ALICE)]
    bob.handle_timer(0.6)  # Timer G
    assert bob.datagrams_to_send(0.6) == [(first, ALICE)]


def test_once_acknowledged_the_invite_is_absorbed_by_its_key_until_timer_l() -> None:
    """RFC 6026 §7.1: after the ACK, retransmissions of the INVITE are absorbed until Timer L
    (64*T1 after the 2xx). Only the key is left for that: the transaction and its 2xx go at the
    ACK; a late CANCEL still gets its 200 and a copy of the INVITE by another branch its 482."""
    bob = make_endpoint()
    bob.receive(F1.encode(), ALICE, 0.0)
    (invite,) = drain_events(bob)
    assert isinstance(invite, RequestReceived)
    bob.respond(invite.request_id, 200, now=0.1, body=b"v=0\r\n", content_type="application/sdp")
    bob.receive(alice("ACK", 1, to_tag="t1", branch="z9hG4bKack1"), ALICE, 0.3)
    drain_events(bob)
    sent(bob)
    assert bob._server == {} and bob.transaction_count == 1  # the key, counted as the transaction
    bob.receive(F1.encode(), ALICE, 5.0)  # the INVITE again: nothing sent, nothing new for the TU
    assert sent(bob) == []
    assert [type(e).__name__ for e in drain_events(bob)] == ["Retransmission"]
    bob.receive(F1.replace("z9hG4bK74bf9", "z9hG4bKother").encode(), ALICE, 6.0)
    assert statuses(sent(bob)) == [482]
    bob.receive(alice("CANCEL", 1, to_tag=None, branch="z9hG4bK74bf9"), ALICE, 7.0)
    assert [(m.status, m.cseq.method) for m, _ in sent(bob) if isinstance(m, Response)] == [
        (200, "CANCEL")
    ]
    drain_events(bob)
    timer_l = 0.1 + 64 * 0.5
    while (deadline := bob.get_timer()) is not None and deadline < timer_l:
        bob.handle_timer(deadline)  # the 482's retransmissions
    assert deadline == pytest.approx(timer_l) and len(bob._acknowledged) == 1
    bob.handle_timer(timer_l)
    assert len(bob._acknowledged) == 0
    while (deadline := bob.get_timer()) is not None:
        bob.handle_timer(deadline)  # the 482's and the CANCEL's transactions end too
    assert bob.transaction_count == 0 and bob._origins == {}
    sent(bob)
    drain_events(bob)
    bob.receive(F1.encode(), ALICE, 40.0)  # too late to be a retransmission: a new request
    (again,) = drain_events(bob)
    assert isinstance(again, RequestReceived) and statuses(sent(bob)) == [100]


def test_in_dialog_requests_carry_from_and_to_with_their_parameters_and_tags() -> None:
    """The dialog keeps From and To as text without tags (the same string for every call to the
    same address) and writes each tag back from the dialog id; other parameters stay as sent."""
    bob = make_endpoint()
    dialogs = []
    for n, from_tag in enumerate(["9fxced76sl", None]):
        invite = F1.replace("z9hG4bK74bf9", f"z9hG4bKcall{n}").replace(
            "Call-ID: 38482", f"Call-ID: {n}-38482"
        )
        invite = invite.replace(
            ";tag=9fxced76sl", f";x=1;tag={from_tag}" if from_tag else ";x=1"
        ).replace(
            "To: Bob <sip:bob@biloxi.example.com>", "To: Bob <sip:bob@biloxi.example.com>;p=q"
        )
        bob.receive(invite.encode(), ALICE, 0.0)
        (received,) = drain_events(bob)
        assert isinstance(received, RequestReceived)
        dialog = bob.respond(received.request_id, 200, now=0.0, body=b"v=0\r\n", content_type="a/b")
        assert dialog is not None
        dialogs.append(dialog)
    sent(bob)
    first, second = (bob._dialogs[d] for d in dialogs)
    assert first._local is second._local and first._remote is second._remote  # one string each
    for dialog in dialogs:
        bob.bye(dialog, now=1.0)
    (bye, _), (bye_2543, _) = sent(bob, 1.0)
    assert isinstance(bye, Request) and isinstance(bye_2543, Request)
    assert (
        bye.headers.get("from")
        == f'"Bob" <sip:bob@biloxi.example.com>;p=q;tag={dialogs[0].local_tag}'
    )
    assert bye.headers.get("to") == '"Alice" <sip:alice@atlanta.example.com>;x=1;tag=9fxced76sl'
    assert bye_2543.headers.get("to") == '"Alice" <sip:alice@atlanta.example.com>;x=1'  # no tag
    assert bye.from_.tag != bye_2543.from_.tag


def test_cancel_before_answer_gives_200_and_487() -> None:
    bob = make_endpoint()
    bob.receive(F1.encode(), ALICE, 0.0)
    (invite,) = drain_events(bob)
    assert isinstance(invite, RequestReceived)
    bob.respond(invite.request_id, 180, now=0.0)
    sent(bob)
    bob.receive(alice("CANCEL", 1, to_tag=None, branch="z9hG4bK74bf9"), ALICE, 1.0)
    out = sent(bob)
    assert [(m.status, m.cseq.method) for m, _ in out if isinstance(m, Response)] == [
        (200, "CANCEL"),
        (487, "INVITE"),
    ]
    (cancelled,) = drain_events(bob)
    assert isinstance(cancelled, InviteCancelled) and cancelled.request_id == invite.request_id
    with pytest.raises(LocalProtocolError):
        bob.respond(invite.request_id, 200, now=1.1)
    bob.receive(alice("CANCEL", 1, to_tag=None, branch="z9hG4bKnone"), ALICE, 1.2)
    assert statuses(sent(bob)) == [481]


def test_in_dialog_request_for_unknown_dialog_gets_481() -> None:
    bob = make_endpoint()
    bob.receive(alice("INFO", 5, to_tag="nosuch", branch="z9hG4bKinfo"), ALICE, 0.0)
    assert statuses(sent(bob)) == [481]
    bob.receive(alice("ACK", 5, to_tag="nosuch", branch="z9hG4bKack"), ALICE, 0.0)
    assert sent(bob) == []  # an ACK is never answered


def test_merged_request_gets_482() -> None:
    bob = make_endpoint()
    bob.receive(F1.encode(), ALICE, 0.0)
    drain_events(bob)
    sent(bob)
    bob.receive(F1.replace("z9hG4bK74bf9", "z9hG4bKother").encode(), ALICE, 0.1)
    assert statuses(sent(bob)) == [482]


def _established() -> tuple[Endpoint, DialogId]:
    bob = make_endpoint()
    bob.receive(F1.encode(), ALICE, 0.0)
    (invite,) = drain_events(bob)
    assert isinstance(invite, RequestReceived)
    dialog = bob.respond(
        invite.request_id, 200, now=0.0, body=b"v=0\r\n", content_type="application/sdp"
    )
    bob.receive(alice("ACK", 1, to_tag="t1", branch="z9hG4bKack1"), ALICE, 0.1)
    drain_events(bob)
    sent(bob)
    assert dialog is not None
    return bob, dialog


def test_reinvite_glare_491_and_randomised_retry() -> None:
    bob, dialog = _established()
    rid = bob.send_in_dialog(
        dialog, "INVITE", now=1.0, body=b"v=0\r\n", content_type="application/sdp"
    )
    ((reinvite, dest),) = sent(bob)
    assert (
        isinstance(reinvite, Request) and reinvite.uri == parse_message(F1.encode()).contacts[0].uri
    )
    assert reinvite.cseq.seq == 1 and reinvite.to.tag == "9fxced76sl" and dest == ALICE
    # Alice's own re-INVITE crosses ours: she gets 491.
    bob.receive(alice("INVITE", 2, to_tag="t1", branch="z9hG4bKglare"), ALICE, 1.1)
    assert statuses(sent(bob)) == [491]
    (refused,) = drain_events(bob)
    assert isinstance(refused, MessageRejected) and refused.status == 491
    # Our re-INVITE gets 491 too: wait 0-2 s (we do not own the Call-ID), then GlareRetryDue.
    resp = (
        "SIP/2.0 491 Request Pending\r\n"
        f"Via: {reinvite.headers.get('via')}\r\n"
        f"From: {reinvite.headers.get('from')}\r\nTo: {reinvite.headers.get('to')}\r\n"
        f"Call-ID: {reinvite.call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    bob.receive(resp.encode(), ALICE, 1.2)
    events = drain_events(bob)
    assert [type(e) for e in events] == [ResponseReceived]
    assert isinstance(events[0], ResponseReceived) and events[0].request_id == rid
    deadline = bob.get_timer()
    glare_at = 1.2 + 1.0  # random() = 0.5 → 100 steps of 10 ms
    while deadline is not None and deadline < glare_at - 1e-9:
        bob.handle_timer(deadline)
        deadline = bob.get_timer()
    assert drain_events(bob) == []
    bob.handle_timer(glare_at)
    assert [type(e) for e in drain_events(bob)] == [GlareRetryDue]


def test_options_outside_dialog_goes_to_the_call_layer() -> None:
    bob = make_endpoint()
    bob.receive((CORPUS / "zeromf.dat").read_bytes(), ALICE, 0.0)
    (options,) = drain_events(bob)
    assert isinstance(options, RequestReceived) and options.request.method == "OPTIONS"
    bob.respond(options.request_id, 200, now=0.0, headers=(("Allow", "INVITE, ACK"),))
    ((ok, _),) = sent(bob)
    assert isinstance(ok, Response) and ok.headers.get("allow") == "INVITE, ACK" and ok.to.tag


def test_methods_not_served_get_405_with_the_policys_allow_and_unknown_ones_501() -> None:
    served = frozenset({"OPTIONS", "BYE", "INVITE", "CANCEL", "ACK", "X-PING"})
    bob = make_endpoint(policy=UasPolicy(allowed_methods=served), agent="bob")
    bob.receive(alice("REGISTER", 1, to_tag=None, branch="z9hG4bKreg"), ALICE, 0.0)
    ((refused, _),) = sent(bob)
    assert isinstance(refused, Response) and refused.status == 405
    # RFC 3261's methods in its order, then extensions: the same text for the same methods.
    assert refused.headers.get("allow") == "INVITE, ACK, BYE, CANCEL, OPTIONS, X-PING"
    bob.receive(alice("FROB", 2, to_tag=None, branch="z9hG4bKfrob"), ALICE, 0.0)
    assert statuses(sent(bob)) == [501]
    # What cannot be checked is answered without a transaction, with a Warning that names us.
    options = alice("OPTIONS", 3, to_tag=None, branch="z9hG4bKbad")
    bob.receive(options.replace(b"CSeq: 3", b"CSeq: x"), ALICE, 0.0)
    ((bad, _),) = sent(bob)
    assert isinstance(bad, Response) and bad.status == 400
    assert (bad.headers.get("warning") or "").startswith('399 bob "')


def test_response_routing_rport_and_via_port() -> None:
    bob = make_endpoint()
    nat = Address(Transport.UDP, "127.0.0.1", 40000)
    bob.receive(F1.replace(";branch=z9hG4bK74bf9", ";branch=z9hG4bK1;rport").encode(), nat, 0.0)
    ((trying, dest),) = sent(bob)
    assert dest == nat and isinstance(trying, Response)
    assert trying.top_via.received == "127.0.0.1" and trying.top_via.rport == 40000
    bob.receive(
        F1.replace("z9hG4bK74bf9", "z9hG4bK2").replace("Call-ID: 38", "Call-ID: 99").encode(),
        nat,
        0.0,
    )
    ((_, dest),) = sent(bob)
    assert dest == Address(Transport.UDP, "127.0.0.1", 5070)  # no rport: the Via port


def _invite(n: int) -> bytes:
    return (
        F1.replace("z9hG4bK74bf9", f"z9hG4bKcap{n}")
        .replace("3848276298220188511@", f"cap{n}@")
        .replace("Content-Type: application/sdp\r\n", "")
        .encode()
    )


def test_open_transactions_are_bounded_new_requests_get_503_with_retry_after() -> None:
    bob = make_endpoint(max_transactions=2)
    for n in range(2):
        bob.receive(_invite(n), ALICE, 0.0)
    assert statuses(sent(bob)) == [100, 100]
    invites = drain_events(bob)
    assert len(invites) == 2
    bob.receive(_invite(2), ALICE, 0.0)
    ((busy, _),) = sent(bob)
    assert isinstance(busy, Response) and busy.status == 503
    assert busy.headers.get("retry-after") == "5"
    assert bob.transaction_count == 2  # answered statelessly: the refusal holds nothing
    (rejected,) = drain_events(bob)
    assert isinstance(rejected, MessageRejected) and rejected.status == 503
    # Once the open transactions end (answered, then Timer H without an ACK), new requests are
    # served again.
    for event in invites:
        assert isinstance(event, RequestReceived)
        bob.respond(event.request_id, 486, now=1.0)
    for deadline in (40.0, 80.0):
        bob.handle_timer(deadline)
    assert bob.transaction_count == 0
    drain_events(bob)
    sent(bob)  # the 486s and their retransmissions
    bob.receive(_invite(3), ALICE, 100.0)
    assert statuses(sent(bob)) == [100]


def test_dialogs_are_bounded_new_invites_get_503_but_byes_pass() -> None:
    bob = make_endpoint(max_dialogs=1)
    bob.receive(_invite(0), ALICE, 0.0)
    (invite,) = drain_events(bob)
    assert isinstance(invite, RequestReceived)
    dialog = bob.respond(
        invite.request_id, 200, now=0.0, body=b"v=0\r\n", content_type="application/sdp"
    )
    assert dialog is not None
    sent(bob)
    bob.receive(_invite(1), ALICE, 0.1)
    assert statuses(sent(bob)) == [503]
    bob.receive(
        alice("BYE", 2, to_tag=dialog.local_tag, branch="z9hG4bK74bfb").replace(
            b"3848276298220188511@", b"cap0@"
        ),
        ALICE,
        0.2,
    )
    assert 200 in statuses(sent(bob))
    assert bob.dialog(dialog) is None
