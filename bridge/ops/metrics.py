"""Prometheus metrics, each declared once, all named ``spaces_bridge_*`` (docs/operations.md).

They live on a registry of their own (not the process-global one), so that several daemons in one
test process, or a reload, never collide. Counting on hot paths is a dictionary lookup and an add;
gauges that describe state (dialogs, transactions, lobby) are read from the daemon when scraped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__

#: SIP methods counted by name; anything else is "other" (a peer must not grow our label sets).
METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "SUBSCRIBE", "NOTIFY", "REGISTER"}
)
#: Mute relay takes milliseconds on loopback and up to seconds when the server is slow.
RELAY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class Metrics:
    def __init__(self) -> None:
        # Label children by (direction, raw first-line token): labels() costs more than inc().
        self._requests: dict[tuple[str, bytes], Counter] = {}
        self._responses: dict[tuple[str, bytes], Counter] = {}
        self.registry = r = CollectorRegistry(auto_describe=True)
        _build_info(r)
        self.sip_requests = Counter(
            "spaces_bridge_sip_requests",
            "SIP requests received (in) and sent (out), by method.",
            ["direction", "method"],
            registry=r,
        )
        self.sip_responses = Counter(
            "spaces_bridge_sip_responses",
            "SIP responses received (in) and sent (out), by status code.",
            ["direction", "code"],
            registry=r,
        )
        self.retransmissions = Counter(
            "spaces_bridge_sip_retransmissions",
            "Retransmitted requests and responses received and absorbed by the transaction layer.",
            ["method"],
            registry=r,
        )
        self.rejected = Counter(
            "spaces_bridge_sip_rejected",
            "Messages refused as malformed (answered 4xx/5xx when routable, else dropped).",
            ["status"],
            registry=r,
        )
        self.calls = Counter(
            "spaces_bridge_calls",
            "Calls that ended, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.menu_calls = Counter(
            "spaces_bridge_menu_calls",
            "Calls through the dial-in voice menu, by how the menu ended (joined, joined_host,"
            " not_found, wrong_pin, limited, silence, unavailable, hung_up).",
            ["outcome"],
            registry=r,
        )
        self.menu_guesses = Counter(
            "spaces_bridge_menu_guesses",
            "Meeting IDs and host PINs keyed in the voice menu that were wrong, or refused"
            " unchecked by a bound on guessing (per call, source or space).",
            ["kind", "result"],
            registry=r,
        )
        self.dialogs = Gauge(
            "spaces_bridge_dialogs_active",
            "Established calls, by endpoint generation (legacy or modern).",
            ["version"],
            registry=r,
        )
        self.transactions = Gauge(
            "spaces_bridge_transactions_active", "Open SIP transactions.", registry=r
        )
        self.lobby = Gauge("spaces_bridge_lobby_waiting", "Callers waiting in a lobby.", registry=r)
        self.subscriptions = Gauge(
            "spaces_bridge_conference_subscriptions_active",
            "RFC 4575 conference subscriptions.",
            registry=r,
        )
        self.relay_to_conference = Histogram(
            "spaces_bridge_mute_relay_phone_to_conference_seconds",
            "From a phone's request (re-INVITE, INFO) to the conference request it causes.",
            buckets=RELAY_BUCKETS,
            registry=r,
        )
        self.relay_to_phone = Histogram(
            "spaces_bridge_mute_relay_conference_to_phone_seconds",
            "From a conference event to the SIP request (re-INVITE, INFO) that tells the phone.",
            buckets=RELAY_BUCKETS,
            registry=r,
        )
        self.conference_latency = Histogram(
            "spaces_bridge_conference_request_seconds",
            "Conference server requests, by route template (every attempt).",
            ["route"],
            buckets=RELAY_BUCKETS,
            registry=r,
        )
        self.conference_errors = Counter(
            "spaces_bridge_conference_request_errors",
            "Conference requests that got no answer (status none) or a 5xx, by route.",
            ["route", "status"],
            registry=r,
        )
        self.socket_connected = Gauge(
            "spaces_bridge_conference_socket_connected",
            "1 while the Socket.IO subscription to the conference server is up.",
            registry=r,
        )
        self.socket_reconnects = Counter(
            "spaces_bridge_conference_socket_reconnects",
            "Socket.IO connections made after the first.",
            registry=r,
        )
        self._connected_once = False

    # -- observers the daemon plugs in -------------------------------------------------------------
    def sip_message(self, direction: str, data: bytes) -> None:
        """Count one message by its first line, without parsing it (``direction``: in or out)."""
        if data.startswith(b"SIP/2.0 "):
            key = (direction, data[8:11])
            counter = self._responses.get(key)
            if counter is None:
                code = key[1]
                label = code.decode() if code.isdigit() else "other"
                counter = self.sip_responses.labels(direction, label)
                if label != "other":  # at most 900 codes per direction
                    self._responses[key] = counter
            counter.inc()
            return
        if data[:2] == b"\r\n":
            return  # a keep-alive
        key = (direction, data[: data.find(b" ", 0, 20)])
        counter = self._requests.get(key)
        if counter is None:
            method = key[1].decode("ascii", "replace")
            label = method if method in METHODS else "other"
            counter = self.sip_requests.labels(direction, label)
            # Only known methods are kept: what a peer invents must not grow the cache.
            if label != "other":
                self._requests[key] = counter
        counter.inc()

    def conference_request(self, route: str, status: int | None, seconds: float) -> None:
        self.conference_latency.labels(route).observe(seconds)
        if status is None or status >= 500:
            self.conference_errors.labels(route, str(status or "none")).inc()

    def socket(self, connected: bool) -> None:
        self.socket_connected.set(1 if connected else 0)
        if connected:
            if self._connected_once:
                self.socket_reconnects.inc()
            self._connected_once = True

    def watch(
        self,
        *,
        dialogs: Callable[[str], int],
        transactions: Callable[[], int],
        lobby: Callable[[], int],
        subscriptions: Callable[[], int],
        dropped: Callable[[], dict[str, int]] = dict,
        streams: Callable[[], dict[tuple[str, ...], int]] = dict,
    ) -> None:
        """Gauges (and the guard's and the stream listeners' counts) read from the daemon at scrape
        time."""
        # spaces_bridge_sip_dropped_total{reason}: what the guard dropped before the stack.
        self.registry.register(
            _CountsCollector(
                "spaces_bridge_sip_dropped",
                "Messages dropped before the SIP stack: known scanners, sources over their rate.",
                ["reason"],
                lambda: {(reason,): count for reason, count in dropped().items()},
            )
        )
        # spaces_bridge_stream_refused_total{transport,reason}: over the connection limits
        # (limit), a broken frame (framing), a failed TLS handshake (tls_handshake: a refused
        # client certificate, no TLS at all, a timeout).
        self.registry.register(
            _CountsCollector(
                "spaces_bridge_stream_refused",
                "TCP and TLS connections refused or cut: over the limits, framing errors, failed "
                "TLS handshakes.",
                ["transport", "reason"],
                streams,
            )
        )
        for version in ("legacy", "modern"):
            self.dialogs.labels(version).set_function(functools.partial(dialogs, version))
        self.transactions.set_function(transactions)
        self.lobby.set_function(lobby)
        self.subscriptions.set_function(subscriptions)

    def watch_media(self, relay: MediaCounts) -> None:
        """The relay's counts, read at scrape time (counting per packet stays a plain add)."""
        families = (
            ("packets", "RTP datagrams the relay read (in) and sent (out), by leg.", ["leg", "direction"]),
            ("octets", "RTP bytes the relay read and sent, by leg.", ["leg", "direction"]),
            ("dropped", "Datagrams the relay did not forward, by reason.", ["reason"]),
            ("events", "Lost phone packets, RFC 4733 keys, latches, RTCP read, refusals.", ["kind"]),
        )  # fmt: skip
        for name, documentation, labels in families:
            self.registry.register(
                _CountsCollector(
                    f"spaces_bridge_media_{name}",
                    documentation,
                    labels,
                    functools.partial(lambda n: _media_counts(relay)[n], name),
                )
            )
        self.registry.register(
            _CountsCollector(
                "spaces_bridge_media_busy_seconds",
                "Time the relay spent handling datagrams (its share of the event loop's CPU).",
                [],
                lambda: {(): relay.busy},
            )
        )
        Gauge(
            "spaces_bridge_media_calls_active",
            "Calls holding a relay port block.",
            registry=self.registry,
        ).set_function(lambda: relay.active)

    def watch_mixer(self, server: MixerHealth) -> None:
        """The embedded server's mixer (Janus AudioBridge), read at scrape time: an alert on
        ``spaces_bridge_mixer_up == 0`` says that meetings have no audio."""
        _watch_mixer(self.registry, server)


def server_registry(server: ServerFacts, *, mixer: bool) -> CollectorRegistry:
    """The metrics of ``spaces-bridge server`` on its own (the bridge's endpoint carries the
    embedded server's): its meetings and, with ``mixer``, its mixer; read at scrape time."""
    r = CollectorRegistry(auto_describe=True)
    _build_info(r)
    Gauge("spaces_bridge_server_meetings_active", "Meetings in progress.", registry=r).set_function(
        lambda: server.census().meetings
    )
    Gauge(
        "spaces_bridge_server_attendees", "Attendees in the meetings (admitted).", registry=r
    ).set_function(lambda: server.census().attendees)
    Gauge(
        "spaces_bridge_server_lobby_waiting",
        "Attendees waiting in a lobby for a moderator.",
        registry=r,
    ).set_function(lambda: server.census().waiting)
    if mixer:
        _watch_mixer(r, server)
    return r


def _build_info(registry: CollectorRegistry) -> None:
    Info("spaces_bridge_build", "Version of the running bridge.", registry=registry).info(
        {"version": __version__}
    )


def _watch_mixer(registry: CollectorRegistry, server: MixerHealth) -> None:
    Gauge(
        "spaces_bridge_mixer_up",
        "1 while the embedded server's mixer answers; 0 while it is down, restarting, or "
        "could not be started (meetings have no audio).",
        registry=registry,
    ).set_function(lambda: float(server.mixer_up))
    registry.register(
        _CountsCollector(
            "spaces_bridge_mixer_restarts",
            "Times the embedded server's mixer was restarted after it died.",
            [],
            lambda: {(): server.mixer_restarts},
        )
    )


class MixerHealth(Protocol):
    """What the embedded server tells the metrics of its mixer (conference.server RunningServer)."""

    @property
    def mixer_up(self) -> bool: ...

    @property
    def mixer_restarts(self) -> int: ...


class Census(Protocol):
    """How many meetings, admitted attendees and lobby waiters the server has now."""

    @property
    def meetings(self) -> int: ...

    @property
    def attendees(self) -> int: ...

    @property
    def waiting(self) -> int: ...


class ServerFacts(MixerHealth, Protocol):
    """What the conference server tells its metrics (conference.server RunningServer)."""

    def census(self) -> Census: ...


class MediaCounts(Protocol):
    """What the relay tells the metrics (bridge.media.relay.Relay)."""

    busy: float
    exhausted: int
    unconfigured: int

    @property
    def active(self) -> int: ...

    def counters(self) -> Any: ...


def _media_counts(relay: MediaCounts) -> dict[str, dict[tuple[str, ...], float]]:
    c = relay.counters()
    return {
        "packets": {
            ("phone", "in"): c.phone_packets,
            ("meeting", "out"): c.to_meeting_packets,
            ("meeting", "in"): c.meeting_packets,
            ("phone", "out"): c.to_phone_packets,
        },
        "octets": {
            ("phone", "in"): c.phone_octets,
            ("meeting", "out"): c.to_meeting_octets,
            ("meeting", "in"): c.meeting_octets,
            ("phone", "out"): c.to_phone_octets,
        },
        "dropped": {
            ("muted",): c.muted,
            ("paused",): c.paused,
            ("not_rtp",): c.not_rtp,
            ("too_big",): c.too_big,
            ("stranger",): c.stranger,
            ("payload_type",): c.payload_type,
            ("unconfigured",): relay.unconfigured,
            ("rtcp_invalid",): c.rtcp_invalid,
        },
        "events": {
            ("lost",): c.lost,
            ("key",): c.keys,
            ("latch",): c.latches,
            ("rtcp",): c.rtcp,
            ("refused_exhausted",): relay.exhausted,
        },
    }


class _CountsCollector(Collector):
    """A counter family whose counts another part keeps (the guard, the stream listeners), read
    when scraped: each key of ``counts`` is a sample's label values, in ``labels``' order."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: list[str],
        counts: Callable[[], Mapping[tuple[str, ...], float]],
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labels = labels
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for values, count in self._counts().items():
            family.add_metric(list(values), count)
        yield family
