"""The call layer's reading of who a caller is behind a trusted proxy (per-source bounds)."""

from __future__ import annotations

import ipaddress

import pytest

from bridge.calls.settings import CallSettings
from bridge.sip.message import Request
from bridge.sip.parser import parse_message

PROXY = ipaddress.ip_network("10.0.0.10/32")


def invite(*vias: str, headers: tuple[str, ...] = ()) -> Request:
    """An INVITE as it reached the bridge through ``vias`` (topmost first), with more header
    lines ``headers``."""
    lines = [
        "INVITE sip:join@10.0.0.11 SIP/2.0",
        *(f"Via: {via}" for via in vias),
        "From: <sip:phone@example.net>;tag=1",
        "To: <sip:join@10.0.0.11>",
        "Call-ID: origin-1",
        "CSeq: 1 INVITE",
        "Max-Forwards: 69",
        *headers,
        "Content-Length: 0",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


PROXIED = invite(
    "SIP/2.0/UDP 10.0.0.10;branch=z9hG4bKproxy",
    "SIP/2.0/UDP 192.168.1.20:5060;received=203.0.113.7;rport=40312;branch=z9hG4bKphone",
)


@pytest.mark.parametrize(
    ("request_", "source", "proxies", "origin"),
    [
        # behind a trusted proxy: where the proxy received the phone's request from
        (PROXIED, "10.0.0.10", (PROXY,), "203.0.113.7"),
        # no received parameter: the phone's Via was right about its address
        (
            invite(
                "SIP/2.0/UDP 10.0.0.10;branch=z9hG4bKp",
                "SIP/2.0/UDP [2001:db8::7]:5060;branch=z9hG4bKq",
            ),
            "10.0.0.10",
            (PROXY,),
            "2001:db8::7",
        ),
        # the same Vias from a source that is not a listed proxy: not believed
        (PROXIED, "10.0.0.99", (PROXY,), "10.0.0.99"),
        (PROXIED, "10.0.0.10", (), "10.0.0.10"),
        # a proxy's own request (one Via): the proxy is the caller
        (invite("SIP/2.0/UDP 10.0.0.10;branch=z9hG4bKp"), "10.0.0.10", (PROXY,), "10.0.0.10"),
    ],
)
def test_a_callers_origin(
    request_: Request,
    source: str,
    proxies: tuple[ipaddress.IPv4Network, ...],
    origin: str,
) -> None:
    assert CallSettings(proxies=proxies).origin(request_, source) == origin
