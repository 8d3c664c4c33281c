"""Drives the sans-IO :class:`~bridge.sip.endpoint.Endpoint` from asyncio (docs/architecture.md).

The driver is the only place where the endpoint meets the event loop: transports hand it received
bytes, it passes ``loop.time()`` as ``now``, sends what the endpoint wants sent through the transport
of each destination, hands events to the call layer, and keeps exactly one ``loop.call_at`` timer set
to the endpoint's earliest deadline. Protocol code never sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

from ..sip import Address, Endpoint, Event, Transport
from .guard import Guard

log = structlog.get_logger("bridge.transport")


class Sender(Protocol):
    """A transport as the driver sees it."""

    def send(self, data: bytes, dest: Address) -> bool:
        """Queue ``data`` for ``dest``; False when it cannot be sent (no connection, closed)."""
        ...


class SipDriver:
    """Feeds the endpoint, flushes its output, and keeps its single timer."""

    def __init__(
        self,
        endpoint: Endpoint,
        loop: asyncio.AbstractEventLoop,
        on_event: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.on_message: Callable[[str, bytes], None] | None = None
        self.guard: Guard | None = None
        """Drops scanners and flooding sources before the stack sees them."""
        """Sees every message in (``"in"``) and out (``"out"``), for metrics."""
        self._loop = loop
        self._senders: dict[Transport, Sender] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flushing = False
        self._again = False

    def add_sender(self, transport: Transport, sender: Sender) -> None:
        self._senders[transport] = sender

    def now(self) -> float:
        return self._loop.time()

    def receive(self, data: bytes, source: Address) -> None:
        """Bytes of one datagram or one stream frame from ``source``."""
        if self.guard is not None and not self.guard.admit(data, source.host, self._loop.time()):
            return
        if self.on_message is not None:
            self.on_message("in", data)
        self.endpoint.receive(data, source, self._loop.time())
        self.flush()

    def flush(self) -> None:
        """Send what the endpoint has queued, deliver its events, and re-arm the timer.

        The call layer calls this after its own commands. Event handlers may issue commands (and
        call ``flush``) while a flush is running: the inner call only marks more work, and the outer
        loop picks it up, so events are always delivered in order and never re-entrantly.
        """
        if self._flushing:
            self._again = True
            return
        self._flushing = True
        endpoint = self.endpoint
        try:
            while True:
                self._again = False
                now = self._loop.time()
                for data, dest in endpoint.datagrams_to_send(now):
                    if self.on_message is not None:
                        self.on_message("out", data)
                    sender = self._senders.get(dest.transport)
                    if sender is None or not sender.send(data, dest):
                        endpoint.transport_failed(dest, now)
                        self._again = True
                event = endpoint.next_event()
                if event is not None:
                    self._deliver(event)
                    continue
                if not self._again:
                    break
        finally:
            self._flushing = False
        self._arm()

    def _deliver(self, event: Event) -> None:
        try:
            self.on_event(event)
        except Exception:
            # A bug in the call layer must not take the SIP stack (and every other call) down with
            # it: log it loudly and go on with the next event.
            log.exception("call layer failed on an event", event=type(event).__name__)

    def _arm(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        deadline = self._timer_at or 0.0
        self._timer = None
        self._timer_at = None
        # asyncio may run a timer up to one clock resolution early; the deadline is what is due.
        self.endpoint.handle_timer(max(self._loop.time(), deadline))
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
