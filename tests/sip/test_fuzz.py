"""Fuzzing in CI (bounded): the parser, the stream framer and the endpoint take mutated RFC 4475
messages and random bytes; every outcome is "parsed" or the documented RemoteProtocolError, and the
endpoint absorbs everything (docs/behaviour.md, Limits and bad input). Hypothesis keeps the run
short and the failures minimal."""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.sip.address import Address, Transport
from bridge.sip.errors import RemoteProtocolError
from bridge.sip.parser import StreamFramer, parse_message
from tests.conftest import CORPUS
from tests.sip.sipnet import drain_events, make_endpoint

SEEDS = [p.read_bytes() for p in sorted(CORPUS.glob("*.dat"))]
PEER = Address(Transport.UDP, "127.0.0.1", 5070)
#: 300 examples per target in CI (seconds); SPACES_FUZZ_EXAMPLES=100000 for a long local run.
FUZZ = settings(
    max_examples=int(os.environ.get("SPACES_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A corpus message with bytes flipped, inserted, deleted, or a slice repeated."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["flip", "insert", "delete", "repeat"])):
            case "flip":
                data[at] = draw(st.integers(0, 255))
            case "insert":
                data[at:at] = draw(
                    st.sampled_from([b"\r\n", b":", b";", b",", b" ", b"\x00", b"%"])
                )
            case "delete":
                del data[at : at + draw(st.integers(1, 16))]
            case "repeat":
                data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


MESSAGES = st.one_of(mutated(), st.binary(max_size=2048))


@FUZZ
@given(MESSAGES, st.booleans())
def test_parser_parses_or_raises_the_documented_error(data: bytes, datagram: bool) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse_message(data, datagram=datagram)


@FUZZ
@given(st.lists(MESSAGES, max_size=4), st.lists(st.integers(1, 700), min_size=1, max_size=8))
def test_framer_frames_or_raises_the_documented_error(
    messages: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(messages)
    framer = StreamFramer()
    at = 0
    for size in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        framer.feed(stream[at : at + size])
        at += size
        try:
            while framer.next_frame() is not None:
                pass
        except RemoteProtocolError:
            return  # the connection would be closed
        if at >= len(stream):
            break


@FUZZ
@given(st.lists(MESSAGES, min_size=1, max_size=5))
def test_endpoint_absorbs_anything(messages: list[bytes]) -> None:
    endpoint = make_endpoint()
    for i, data in enumerate(messages):
        endpoint.receive(data, PEER, float(i))
        endpoint.datagrams_to_send(float(i))
        drain_events(endpoint)
    endpoint.handle_timer(100.0)
