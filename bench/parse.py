"""Parse speed of a typical 700-byte INVITE: messages per second on one core.

Two figures: the hot path a UAS runs on every request (split the message, read Via, From, To,
Call-ID, CSeq and the Request-URI), and a full parse that reads every typed header too.
Run: .venv/bin/python bench/parse.py
"""

from __future__ import annotations

import platform
import sys
import time

from bridge.sip import parser
from bridge.sip.message import Request
from bridge.sip.parser import parse_message

INVITE = (
    b"INVITE sip:demo@bridge.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice Phone" <sip:alice@192.0.2.10>;tag=1928301774\r\n'
    b"To: <sip:demo@bridge.example.com>\r\n"
    b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>\r\n"
    b"User-Agent: Yealink SIP-T46S 66.86.0.15\r\n"
    b"Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"spacesVersion: 1.1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 226\r\n"
    b"\r\n"
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 9 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def variants(n: int = 1000) -> list[bytes]:
    """Each message with its own Call-ID, tags and branch, as on a real network: nothing that differs
    between calls can be served from a cache."""
    return [
        INVITE.replace(b"z9hG4bK776asdhds", b"z9hG4bK%08dx" % i)
        .replace(b"tag=1928301774", b"tag=%010d" % (i * 7919))
        .replace(b"a84b4c76e66710", b"%014x" % (i * 104729))
        for i in range(n)
    ]


MESSAGES = variants()


def hot(data: bytes) -> None:
    m = parse_message(data)
    assert isinstance(m, Request)
    m.top_via  # noqa: B018
    m.from_  # noqa: B018
    m.to  # noqa: B018
    m.call_id  # noqa: B018
    m.cseq  # noqa: B018
    m.uri  # noqa: B018


def full(data: bytes) -> None:
    hot(data)
    m = parse_message(data)
    m.vias  # noqa: B018
    m.contacts  # noqa: B018
    m.headers.get("spacesversion")
    m.content_type  # noqa: B018


def split_only(data: bytes) -> None:
    parse_message(data)


def rate(fn: object, seconds: float = 2.0) -> float:
    assert callable(fn)
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for message in MESSAGES:
            fn(message)
        n += 1000
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    build = "pure Python" if (parser.__file__ or "").endswith(".py") else "compiled (mypyc)"
    print(
        f"python {sys.version.split()[0]} on {platform.machine()}, message {len(INVITE)} bytes, "
        f"parser {build}"
    )
    print(f"{'case':<44}{'msgs/s':>12}{'us/msg':>10}")
    for name, fn in (
        ("split + start line + headers (no typed read)", split_only),
        ("hot path: + Via, From, To, Call-ID, CSeq, URI", hot),
        ("full: hot path + all Vias, Contact, type", full),
    ):
        r = rate(fn)
        print(f"{name:<44}{r:>12,.0f}{1e6 / r:>10.2f}")


if __name__ == "__main__":
    main()
