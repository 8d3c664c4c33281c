"""Test helpers: deterministic endpoints and a fake network with chosen loss, stepped by hand."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.sip.address import Address, Transport
from bridge.sip.endpoint import Endpoint, EndpointConfig
from bridge.sip.events import Event
from bridge.sip.message import Request, Response
from bridge.sip.parser import parse_message

BRIDGE = Address(Transport.UDP, "127.0.0.1", 5060)
PHONE = Address(Transport.UDP, "127.0.0.1", 5070)


def make_endpoint(
    host: str = "127.0.0.1", port: int = 5060, prefix: str = "t", **config: object
) -> Endpoint:
    counter = itertools.count(1)
    local = dict.fromkeys(Transport, (host, port))
    return Endpoint(
        EndpointConfig(local=local, **config),  # type: ignore[arg-type]
        token=lambda: f"{prefix}{next(counter)}",
        random=lambda: 0.5,
    )


def drain_events(endpoint: Endpoint) -> list[Event]:
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    return events


def sent(endpoint: Endpoint, now: float = 0.0) -> list[tuple[Request | Response, Address]]:
    return [(parse_message(data), addr) for data, addr in endpoint.datagrams_to_send(now)]


def statuses(out: list[tuple[Request | Response, Address]]) -> list[int]:
    return [m.status for m, _ in out if isinstance(m, Response)]


@dataclass
class Net:
    """Two endpoints joined by a fake network. ``drop(data, src, dst) -> bool`` decides losses."""

    a: Endpoint
    b: Endpoint
    a_addr: Address
    b_addr: Address
    drop: Callable[[bytes, Address, Address], bool] = lambda data, src, dst: False
    now: float = 0.0
    events_a: list[Event] = field(default_factory=list)
    events_b: list[Event] = field(default_factory=list)
    on_event_a: Callable[[Event], None] = lambda event: None
    on_event_b: Callable[[Event], None] = lambda event: None
    dropped: list[bytes] = field(default_factory=list)
    delivered: list[tuple[bytes, Address]] = field(default_factory=list)

    def pump(self) -> None:
        """Deliver everything in flight (apart from losses) until quiet at this instant."""
        while True:
            moved = False
            for ep, src, peer, peer_addr in (
                (self.a, self.a_addr, self.b, self.b_addr),
                (self.b, self.b_addr, self.a, self.a_addr),
            ):
                for data, dst in ep.datagrams_to_send(self.now):
                    moved = True
                    assert dst == peer_addr, f"sent to {dst}, expected {peer_addr}"
                    if self.drop(data, src, dst):
                        self.dropped.append(data)
                        continue
                    self.delivered.append((data, dst))
                    peer.receive(data, src, self.now)
            for ep, events, handler in (
                (self.a, self.events_a, self.on_event_a),
                (self.b, self.events_b, self.on_event_b),
            ):
                for event in drain_events(ep):
                    events.append(event)
                    handler(event)
                    moved = True
            if not moved:
                return

    def step(self) -> bool:
        """Advance to the next timer of either endpoint and fire it; False when none is left."""
        deadlines = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
        if not deadlines:
            return False
        self.now = max(self.now, min(deadlines))
        for ep in (self.a, self.b):
            timer = ep.get_timer()
            if timer is not None and timer <= self.now:
                ep.handle_timer(self.now)
        self.pump()
        return True

    def run_until(self, condition: Callable[[], bool], limit: float = 120.0) -> None:
        self.pump()
        while not condition():
            if not self.step() or self.now > limit:
                raise AssertionError(f"condition not met by t={self.now}")
