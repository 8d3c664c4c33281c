"""In-dialog requests follow the dialog's route set (RFC 3261 §12.2.1.1, §8.1.2): behind a proxy
that record-routes, a re-INVITE or BYE goes to the proxy with the Route header it asked for."""

from __future__ import annotations

import pytest

from bridge.sip.address import Address, Transport
from bridge.sip.dialog import DialogId
from bridge.sip.endpoint import Endpoint
from bridge.sip.events import RequestReceived
from bridge.sip.message import Request
from tests.sip.sipnet import drain_events, make_endpoint, sent

PHONE_CONTACT = "sip:alice@10.9.8.7:5062"


def invite(transport: Transport, *record_routes: str) -> bytes:
    lines = [
        "INVITE sip:demo@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/{transport.via_name} 127.0.0.1:5060;branch=z9hG4bKproxy1",
        f"Via: SIP/2.0/{transport.via_name} 10.9.8.7:5062;branch=z9hG4bKphone1",
        *(f"Record-Route: {route}" for route in record_routes),
        "Max-Forwards: 69",
        "From: <sip:alice@example.net>;tag=a1",
        "To: <sip:demo@127.0.0.1>",
        "Call-ID: route-set-1",
        "CSeq: 1 INVITE",
        f"Contact: <{PHONE_CONTACT}>",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answered(source: Address, *record_routes: str) -> tuple[Endpoint, DialogId]:
    endpoint = make_endpoint()
    endpoint.receive(invite(source.transport, *record_routes), source, 0.0)
    (received,) = [e for e in drain_events(endpoint) if isinstance(e, RequestReceived)]
    dialog = endpoint.respond(received.request_id, 200, now=0.0)
    assert dialog is not None
    (response, _) = sent(endpoint)[-1]
    assert not isinstance(response, Request) and response.status == 200
    assert response.headers.get_all("record-route") == list(record_routes)  # §12.1.1: copied
    return endpoint, dialog


def bye(endpoint: Endpoint, dialog: DialogId) -> tuple[Request, Address]:
    endpoint.bye(dialog, now=1.0)
    ((request, dest),) = sent(endpoint, 1.0)
    assert isinstance(request, Request)
    return request, dest


def test_without_a_route_set_requests_go_back_to_the_flow() -> None:
    """No proxy: the phone's NAT binding (where its INVITE came from), not its Contact's address."""
    source = Address(Transport.UDP, "127.0.0.1", 40000)
    request, dest = bye(*answered(source))
    assert dest == source
    assert str(request.uri) == PHONE_CONTACT
    assert request.headers.get_all("route") == []


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("<sip:127.0.0.2;lr>", Address(Transport.UDP, "127.0.0.2", 5060)),
        ("<sip:127.0.0.2:5070;lr;transport=udp>", Address(Transport.UDP, "127.0.0.2", 5070)),
        ("<sip:127.0.0.2:5070;transport=TCP;lr>", Address(Transport.TCP, "127.0.0.2", 5070)),
        ("<sips:127.0.0.2;lr>", Address(Transport.TLS, "127.0.0.2", 5061)),
        ("<sip:[::1]:5070;lr>", Address(Transport.UDP, "::1", 5070)),
    ],
)
def test_requests_go_to_the_first_route(route: str, expected: Address) -> None:
    """A proxy that record-routed gets our requests, whatever port it sent the INVITE from, with
    the route set as Route headers and the phone's Contact as the Request-URI (loose routing)."""
    source = Address(Transport.UDP, "127.0.0.1", 5099)
    request, dest = bye(*answered(source, route, "<sip:192.0.2.9;lr>"))
    assert dest == expected
    assert str(request.uri) == PHONE_CONTACT
    assert request.headers.get_all("route") == [route, "<sip:192.0.2.9;lr>"]
    assert str(request.headers.get("via")).startswith(f"SIP/2.0/{expected.transport.via_name} ")


def test_a_reinvite_and_its_ack_follow_the_route_too() -> None:
    source = Address(Transport.UDP, "127.0.0.1", 5099)
    endpoint, dialog = answered(source, "<sip:127.0.0.2:5070;lr>")
    endpoint.send_in_dialog(dialog, "INVITE", now=1.0)
    ((reinvite, dest),) = sent(endpoint, 1.0)
    assert isinstance(reinvite, Request) and reinvite.method == "INVITE"
    assert dest == Address(Transport.UDP, "127.0.0.2", 5070)


def test_over_a_stream_the_proxys_own_connection_is_reused() -> None:
    """A proxy connects from an ephemeral port; its Record-Route names its listening port. The
    connection it opened is the flow to it (we open no connection of our own)."""
    source = Address(Transport.TCP, "127.0.0.2", 43210)
    _, dest = bye(*answered(source, "<sip:127.0.0.2:5060;transport=tcp;lr>"))
    assert dest == source


@pytest.mark.parametrize(
    "route",
    [
        "<sip:proxy.example.net;lr>",  # a name: this core does no DNS
        "<sip:127.0.0.2;transport=sctp;lr>",  # a transport we do not serve
        "<tel:+15551234>",  # not a SIP URI
    ],
)
def test_routes_we_cannot_reach_directly_fall_back_to_the_flow(route: str) -> None:
    source = Address(Transport.UDP, "127.0.0.1", 5099)
    request, dest = bye(*answered(source, route))
    assert dest == source
    assert request.headers.get_all("route") == [route]
