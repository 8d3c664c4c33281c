"""Two endpoints over a fake network with deterministic loss: calls complete by retransmission."""

from __future__ import annotations

import pytest

from bridge.sip.address import Address, Transport
from bridge.sip.dialog import DialogId
from bridge.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    EndReason,
    Event,
    RequestReceived,
    ResponseReceived,
)
from bridge.sip.uri import NameAddr, SipUri
from tests.sip.sipnet import Net, make_endpoint

UAC = Address(Transport.UDP, "127.0.0.1", 5070)
UAS = Address(Transport.UDP, "127.0.0.1", 5060)


def drop_first(*prefixes: bytes) -> object:
    """Drop the first datagram starting with each prefix (so its retransmission must recover)."""
    pending = list(prefixes)

    def drop(data: bytes, src: Address, dst: Address) -> bool:
        for prefix in pending:
            if data.startswith(prefix):
                pending.remove(prefix)
                return True
        return False

    return drop


def call(drop: object, transport: Transport = Transport.UDP) -> Net:
    uac_addr = Address(transport, UAC.host, UAC.port)
    uas_addr = Address(transport, UAS.host, UAS.port)
    uac = make_endpoint(port=5070, prefix="a")
    uas = make_endpoint(port=5060, prefix="b")
    net = Net(uac, uas, uac_addr, uas_addr, drop=drop)  # type: ignore[arg-type]
    confirmed: list[DialogId] = []

    def answer(event: Event) -> None:
        if isinstance(event, RequestReceived):
            body = b"v=0\r\n" if event.request.method == "INVITE" else b""
            uas.respond(
                event.request_id, 200, now=net.now, body=body, content_type="application/sdp"
            )
        elif isinstance(event, DialogConfirmed):
            confirmed.append(event.dialog)

    net.on_event_b = answer
    uac.invite(
        SipUri("sip", UAS.host, user="demo", port=UAS.port),
        peer=uas_addr,
        from_=NameAddr(SipUri("sip", "127.0.0.1", user="alice"), "Alice"),
        to=NameAddr(SipUri("sip", UAS.host, user="demo")),
        now=0.0,
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    net.run_until(lambda: bool(confirmed))
    dialogs = {e.dialog for e in net.events_a if isinstance(e, ResponseReceived) and e.dialog}
    (uac_dialog,) = dialogs
    uac.bye(uac_dialog, now=net.now)
    net.run_until(
        lambda: (
            any(isinstance(e, DialogTerminated) for e in net.events_b)
            and any(
                isinstance(e, ResponseReceived) and e.response.cseq.method == "BYE"
                for e in net.events_a
            )
        )
    )
    # Let every transaction finish, then nothing may be left behind.
    while net.step():
        pass
    assert uac.transaction_count == 0 and uas.transaction_count == 0
    assert uac.dialog_count == 0 and uas.dialog_count == 0
    ended = [e for e in net.events_b if isinstance(e, DialogTerminated)]
    assert [e.reason for e in ended] == [EndReason.BYE_RECEIVED]
    return net


@pytest.mark.parametrize(
    "lost",
    [
        (),
        (b"INVITE",),
        (b"SIP/2.0 200",),
        (b"ACK",),
        (b"BYE",),
        (b"INVITE", b"SIP/2.0 100", b"SIP/2.0 200", b"ACK", b"BYE"),
    ],
    ids=lambda lost: "+".join(p.decode().split()[-1] for p in lost) or "none",
)
def test_call_completes_despite_loss(lost: tuple[bytes, ...]) -> None:
    net = call(drop_first(*lost))
    assert len(net.dropped) == len(lost)
    # Exactly one INVITE and one BYE reached the call layer, whatever was retransmitted.
    methods = [e.request.method for e in net.events_b if isinstance(e, RequestReceived)]
    assert methods == ["INVITE"]


def test_reliable_transport_never_retransmits() -> None:
    net = call(lambda data, src, dst: False, Transport.TCP)
    datagrams = [data for data, _ in net.delivered]
    assert len(datagrams) == len(set(datagrams)) == 6, [d.split(b"\r\n", 1)[0] for d in datagrams]
