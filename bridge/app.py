"""The composition root: builds the daemon from its configuration and runs it
(docs/architecture.md).

Start-up order: media anchor, SIP endpoint and driver, call layer, then listeners (so that nothing is
answered before the layers behind it exist). Shutdown (SIGTERM/SIGINT) is the reverse, in steps: new
INVITEs get 503 at once; established calls may go on for ``drain.grace_seconds``; then every call
gets BYE, the phones' answers are awaited for ``drain.bye_wait_seconds``; listeners close; exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import resource
import secrets
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import structlog
from aiohttp import web

from . import __version__
from .calls.access import Access
from .calls.conference import UAS_POLICY, ConferenceCalls
from .calls.policy import KeyMap
from .calls.settings import CallSettings
from .conference.client.client import SpacesClient
from .conference.client.events import Connected, Disconnected, SpacesEvent
from .conference.client.local import LocalSubscription
from .conference.client.realtime import SpacesSubscription
from .conference.server.app import RunningServer, start_server
from .conference.server.config import (
    DEMO_DIAL_IN,
    ServerConfig,
    SpaceConfig,
    TokenConfig,
    embedded_default,
    token_for,
)
from .conference.server.local import LocalApi
from .conference.server.mixer.config import JanusConfig
from .conference.wire import Role
from .config import Config, ConfigError, LimitsConfig, Listen, MediaConfig, load
from .media.anchor import MediaAnchor
from .media.prompts import PromptError, Prompts
from .media.relay import Relay
from .ops import logs
from .ops.http import start_ops
from .ops.metrics import Metrics
from .ops.notify import Notifier
from .sip import Endpoint, EndpointConfig, TimerConfig, Transport, host_text, is_token
from .transport.driver import SipDriver
from .transport.guard import SCANNERS, Guard
from .transport.stream import StreamServer, server_tls_context
from .transport.udp import UdpListener, UdpSender, listen_udp

log = structlog.get_logger("bridge.app")

# Young collections every 2,000 net allocations (≈0.3 ms each), the middle generation every 10 of
# them (≈3 ms, at most 20,000 young objects), a full collection only after 1,000 of those: minutes
# apart under load instead of seconds (docs/decisions.md, "Performance"; bench/relay.py).
GC_THRESHOLDS = (2000, 10, 1000)

trace = structlog.get_logger("bridge.sip.trace")


def _token() -> str:
    # Tags, branches and Call-IDs: 64 random bits are unique enough for RFC 3261 §19.3 and cheap.
    return secrets.token_hex(8)


def advertised(config: Config) -> dict[Transport, tuple[str, int]]:
    """Host and port written in Via and Contact for each transport: the first listener of it."""
    local: dict[Transport, tuple[str, int]] = {}
    for item in config.sip.listen:
        local.setdefault(item.transport, (config.sip.advertise or item.host, item.port))
    return local


def agent_name(user_agent: str) -> str:
    """How the SIP stack names us in Warning headers and SDP origins: the product of ``[sip]
    user_agent`` (``spaces-bridge/2.1 (Linux)`` → ``spaces-bridge``), or ``-`` when that is no
    token, which both grammars need (RFC 3261 §20.43, RFC 4566 §5.2)."""
    product = user_agent.strip().partition("/")[0].partition(" ")[0]
    return product if is_token(product) else "-"


class Bridge:
    """The running daemon: its parts and their lifecycle."""

    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self._loop = loop
        self._tasks: set[asyncio.Task[None]] = set()
        self.endpoint = Endpoint(
            EndpointConfig(
                local=advertised(config),
                policy=UAS_POLICY,
                timers=TimerConfig(t1=config.sip.timer_t1_ms / 1000),
                agent=agent_name(config.sip.user_agent),
            ),
            token=_token,
            random=random.random,
        )
        self.driver = SipDriver(self.endpoint, loop)
        self.metrics = Metrics()
        self.driver.on_message = self._on_message
        self.guard = Guard()
        self._apply_limits(config.limits)
        self.driver.guard = self.guard
        self._ops: web.AppRunner | None = None
        self._listening = False
        media = config.media
        # The relay takes a port block per call; without it every call shares the anchor's ports.
        self.relay = (
            Relay(
                media.host,
                media.port_min,
                media.port_max,
                prompts=Prompts.load(overrides=media.prompts_dir) if media.prompts else None,
            )
            if media.relay
            else None
        )
        self.media = (
            None if media.relay else MediaAnchor(media.host, media.port_min, media.port_max)
        )
        self.server: RunningServer | None = None
        self.meeting_id: str | None = None
        """The embedded server's first dial-in ID (the demo space's), printed at start."""
        self.client: SpacesClient | None = None
        self.subscription: SpacesSubscription | LocalSubscription | None = None
        self.calls: ConferenceCalls | None = None
        self._udp: list[UdpListener] = []
        self._streams: dict[Transport, StreamServer] = {}

    def _apply_limits(self, limits: LimitsConfig) -> None:
        """At start and on reload: the guard's buckets and the endpoint's bounds."""
        self.guard.reconfigure(
            rate=limits.rate_per_source,
            burst=limits.burst_per_source,
            invite_rate=limits.invites_per_source,
            invite_burst=limits.invite_burst_per_source,
            scanners=SCANNERS if limits.drop_scanners else (),
            trusted=limits.trusted_proxies,
        )
        self.endpoint.config = replace(
            self.endpoint.config,
            max_transactions=limits.max_transactions,
            max_dialogs=limits.max_dialogs,
        )

    def _on_message(self, direction: str, data: bytes) -> None:
        self.metrics.sip_message(direction, data)
        if self.config.ops.sip_trace:
            trace.info("sip message", direction=direction, message=logs.redacted(data))

    def _spawn(self, work: Awaitable[object]) -> None:
        """Run call-layer work as a tracked task; its failure is logged, never fatal to the daemon."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("call task failed")

        task = self._loop.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        for warning in self.config.warnings:
            log.warning("configuration", warning=warning)
        if self.media is not None:
            await self.media.start()
        if self.relay is not None:
            _raise_file_limit(3 * self.relay.capacity + 1024)
            log.info(
                "media relay ready",
                host=self.relay.host,
                ports=f"{self.config.media.port_min}-{self.config.media.port_max}",
                calls=self.relay.capacity,
                prompts=self.relay.prompts is not None,
            )
        await self._connect_conference()
        udp = UdpSender()
        tls: ssl.SSLContext | None = None
        sip = self.config.sip
        if sip.tls_certificate is not None and sip.tls_private_key is not None:
            tls = server_tls_context(
                str(sip.tls_certificate),
                str(sip.tls_private_key),
                client_ca=None if sip.tls_client_ca is None else str(sip.tls_client_ca),
                verify_client=sip.tls_verify_client.mode,
            )
        for item in sip.listen:
            await self._listen(item, udp, tls)
        self.driver.add_sender(Transport.UDP, udp)
        for kind, server in self._streams.items():
            self.driver.add_sender(kind, server)
        self._listening = True
        address = self.config.ops.address
        if address is not None:
            self._ops, url = await start_ops(self.metrics.registry, self.not_ready, *address)
            log.info("operations endpoint", url=url, paths="/metrics /healthz /readyz")

    def reload(self) -> None:
        """SIGHUP: re-read the configuration file and apply what can change live (call settings,
        dialplan, signalling profiles, log format); name the tables that need a restart. A file
        that does not validate changes nothing."""
        source = self.config.source
        if source.startswith("<"):
            log.info("reload: no configuration file to read", config=source)
            return
        try:
            new = load(source)
        except ConfigError as exc:
            log.error("reload refused: configuration error", error=str(exc))  # noqa: TRY400
            return
        worker = self.config.worker
        if worker is not None and worker < new.sip.workers:
            # Compared with what this worker runs with (its media slice, its ops port).
            new = new.for_worker(worker)
        live = ["calls", "dialplan", "limits", "ops.json_logs", "ops.log_level", "ops.sip_trace"]
        if self._reload_prompts(new.media):
            live.append("media.prompts_dir")
        restart = [
            name
            for name in ("sip", "media", "drain", "conference", "server", "auth")
            if getattr(new, name) != getattr(self.config, name)
        ]
        if new.ops.listen != self.config.ops.listen:
            restart.append("ops.listen")
        if (new.ops.json_logs, new.ops.log_level) != (
            self.config.ops.json_logs,
            self.config.ops.log_level,
        ):
            logs.configure(json=new.ops.json_logs, level=new.ops.log_level, worker=worker)
        self.config = replace(
            self.config,
            calls=new.calls,
            dialplan=new.dialplan,
            ops=replace(
                self.config.ops,
                json_logs=new.ops.json_logs,
                log_level=new.ops.log_level,
                sip_trace=new.ops.sip_trace,
            ),
        )
        self.config = replace(self.config, limits=new.limits)
        self._apply_limits(new.limits)
        if self.calls is not None:
            self.calls.reconfigure(call_settings(self.config))
        log.info("configuration reloaded", applied=live, needs_restart=restart)

    def _reload_prompts(self, media: MediaConfig) -> bool:
        """New recordings in ``[media] prompts_dir`` (or another folder, or none): played from
        each call's next prompt on. The rest of ``[media]``, prompts on or off included, is bound
        at start. Whether they were applied."""
        old = self.config.media
        if self.relay is None or not (old.prompts and media.prompts):
            return False
        if media.prompts_dir is None and old.prompts_dir is None:
            return False  # ours, which do not change; a folder is read again even at the same path
        try:
            self.relay.prompts = Prompts.load(overrides=media.prompts_dir)
        except (PromptError, OSError) as exc:  # changed again since the file was checked
            log.error("reload: prompts kept as they were", error=str(exc))  # noqa: TRY400
            return False
        self.config = replace(self.config, media=replace(old, prompts_dir=media.prompts_dir))
        return True

    def not_ready(self) -> list[str]:
        """What keeps the bridge from taking calls (``/readyz``)."""
        reasons = []
        if not self._listening:
            reasons.append("SIP listeners are not up")
        if self.subscription is None or not self.subscription.connected:
            reasons.append("the conference server's event stream is not connected")
        if self.calls is not None and self.calls.draining:
            reasons.append("draining")
        if self.server is not None:
            reasons += self.server.not_ready()
        return reasons

    async def _connect_conference(self) -> None:
        """Start the embedded server (no ``conference.url``) and the client and subscription."""
        conference = self.config.conference
        if conference.url is None:
            server_config = embedded_server_config(self.config.server, self.config.media_server)
            ids = {s.id: s.dial_in_id for s in server_config.spaces if s.dial_in_id is not None}
            self.meeting_id = ids.get("demo", next(iter(ids.values()), None))
            self.server = await start_server(server_config)
            if server_config.mixer is not None:
                self.metrics.watch_mixer(self.server)
            url, token = self.server.url, token_for(server_config, Role.BRIDGE)
            assert token is not None  # embedded_server_config always has one
            local: LocalApi | None = self.server.local_api()
        else:
            url, token, local = conference.url, conference.token or "", None
        self.client = SpacesClient(
            url,
            token,
            timeout=conference.request_timeout_seconds,
            on_request=self.metrics.conference_request,
            local=local,
        )
        await self.client.start()
        calls = ConferenceCalls(
            self.endpoint,
            self.media,
            self.client,
            call_settings(self.config),
            subscribe=self._subscribe,
            clock=self._loop.time,
            flush=self.driver.flush,
            spawn=self._spawn,
            later=self._loop.call_later,
            metrics=self.metrics,
            access=Access(self.config.auth),
            relay=self.relay,
            prompts=self.config.media.prompts,
        )
        self.calls = calls
        self.metrics.watch(
            dialogs=calls.dialogs,
            transactions=lambda: self.endpoint.transaction_count,
            lobby=lambda: calls.waiting,
            subscriptions=lambda: calls.subscriptions.count,
            dropped=lambda: {
                "scanner": self.guard.scanners_dropped,
                "rate": self.guard.rate_dropped,
                "invite_rate": self.guard.invites_dropped,
            },
            streams=self._stream_counts,
        )
        if self.relay is not None:
            self.metrics.watch_media(self.relay)

        def on_spaces_event(event: SpacesEvent) -> None:
            if isinstance(event, Connected | Disconnected):
                self.metrics.socket(isinstance(event, Connected))
            calls.on_spaces_event(event)

        if self.server is not None:
            self.subscription = LocalSubscription(self.server.realtime, on_event=on_spaces_event)
        else:
            self.subscription = SpacesSubscription(url, token, on_event=on_spaces_event)
        await self.subscription.start()
        self.driver.on_event = calls.on_event
        log.info("conference", url=url, embedded=self.server is not None)
        if calls.settings.menu_numbers():
            await calls.menus.probe()

    def announce_dial_in(self, listen: Listen) -> None:
        """Say at start where the voice menu answers, and with which meeting ID, or that it
        cannot (docs/calls.md, "One number for every meeting")."""
        numbers = self.calls.settings.menu_numbers() if self.calls is not None else []
        available = self.calls.menus.available if self.calls is not None else None
        where = f"{host_text(listen.host)}:{listen.port}"
        for number in numbers:
            if available is False:
                log.warning(
                    "dial-in unavailable: the conference server has no dial-in IDs; this number"
                    " answers 404",
                    call=f"sip:{number}@{where}",
                )
            else:
                # A remote server's IDs are its own: only the embedded one's is known here.
                known = {"meeting_id": self.meeting_id} if self.meeting_id else {}
                log.info("dial-in", call=f"sip:{number}@{where}", **known)

    async def _subscribe(self, space_id: str) -> None:
        if self.subscription is not None and space_id not in self.subscription.spaces:
            await self.subscription.subscribe(space_id)

    @property
    def active(self) -> int:
        return self.calls.active if self.calls is not None else 0

    def _stream_counts(self) -> dict[tuple[str, ...], int]:
        counts: dict[tuple[str, ...], int] = {}
        for kind, server in self._streams.items():
            counts[kind.value, "limit"] = server.refused
            counts[kind.value, "framing"] = server.framing_errors
            if server.tls is not None:
                counts[kind.value, "tls_handshake"] = server.handshake_failures
        return counts

    async def _listen(self, item: Listen, udp: UdpSender, tls: ssl.SSLContext | None) -> None:
        # Only workers share ports: a lone daemon must fail to start on a port another process
        # holds rather than silently split its traffic with it.
        shared = self.config.sip.workers > 1
        if item.transport is Transport.UDP:
            listener = await listen_udp(self.driver, item.host, item.port, reuse_port=shared)
            udp.add(listener)
            self._udp.append(listener)
        else:
            server = self._streams.get(item.transport)
            if server is None:
                context = tls if item.transport is Transport.TLS else None
                server = StreamServer(self.driver, item.transport, tls=context)
                self._streams[item.transport] = server
            await server.listen(item.host, item.port, reuse_port=shared)
        log.info("listening", listen=str(item))

    async def drain(self) -> None:
        drain = self.config.drain
        calls = self.calls
        if calls is None:
            return
        calls.refuse_new_calls()
        log.info("draining: new calls refused", active=calls.active)
        await self._wait_until(lambda: calls.active == 0, drain.grace_seconds)
        byes = calls.drain()
        if byes:
            log.info("draining: BYE sent", calls=byes)
            await self._wait_until(lambda: self.endpoint.client_count == 0, drain.bye_wait_seconds)

    async def _wait_until(self, done: Callable[[], bool], seconds: float) -> None:
        deadline = self._loop.time() + seconds
        while not done() and self._loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._ops is not None:
            await self._ops.cleanup()
        for listener in self._udp:
            listener.close()
        for server in self._streams.values():
            await server.close()
        # Leaving the meeting is call work in flight: give it a moment before cancelling.
        await self._wait_until(lambda: not self._tasks, 1.0)
        for task in list(self._tasks):
            task.cancel()
        if self.subscription is not None:
            await self.subscription.close()
        if self.client is not None:
            await self.client.close()
        if self.server is not None:
            await self.server.close()
        self.driver.close()
        if self.media is not None:
            self.media.close()
        if self.relay is not None:
            self.relay.close()


async def run(config: Config, notifier: Notifier | None = None) -> int:
    loop = asyncio.get_running_loop()
    notify = notifier or Notifier()
    bridge = Bridge(config, loop)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP (systemctl reload) re-reads the file; its default action would end the process.
    loop.add_signal_handler(signal.SIGHUP, bridge.reload)
    try:
        await bridge.start()
    except OSError as exc:
        # An operator's problem (port in use, no permission), not a bug: the message, no traceback.
        log.error("cannot start", error=str(exc))  # noqa: TRY400
        await bridge.close()
        return 1
    # Everything alive now (modules, config, the server's state, caches) lives as long as the
    # daemon: moved out of the collector's generations, full collections no longer walk it.
    gc.collect()
    gc.freeze()
    # Calls free their objects by reference counting (no per-call cycles: tests/calls/test_cycles.py),
    # so the collector mostly walks live objects. CPython's default (700, 10, 10) ran a full
    # collection every couple of seconds under load (a pause of 100-250 ms at 400 calls/s) because
    # every call's objects outlive the young generations; these thresholds make young collections
    # a little rarer and full ones far rarer (docs/decisions.md, "Performance").
    gc.set_threshold(*GC_THRESHOLDS)
    first = config.sip.listen[0]
    log.info(
        "spaces-bridge ready",
        version=__version__,
        call=f"sip:demo@{host_text(first.host)}:{first.port}",
        config=config.source,
    )
    bridge.announce_dial_in(first)
    notify.ready(f"listening on {', '.join(str(item) for item in config.sip.listen)}")
    await stop.wait()
    log.info("stopping")
    notify.stopping(f"draining {bridge.active} calls")
    await bridge.drain()
    await bridge.close()
    notify.close()
    log.info("stopped")
    return 0


def embedded_server_config(
    server: ServerConfig | None, mixer: JanusConfig | None = None
) -> ServerConfig:
    """The embedded conference server: the ``[server]`` table, or the development default (space
    ``demo``, a fresh moderator token logged at start), with the ``[media_server]`` mixer. The
    bridge's own token is added when the table names none, and the demo space when it lists no
    spaces."""
    if server is None:
        return replace(embedded_default(secrets.token_urlsafe(16)), mixer=mixer)
    server = replace(server, mixer=mixer)
    if token_for(server, Role.BRIDGE) is None:
        own = TokenConfig(secrets.token_urlsafe(24), Role.BRIDGE, "bridge (embedded)")
        server = replace(server, tokens=(*server.tokens, own))
    if not server.spaces:
        server = replace(
            server, spaces=(SpaceConfig("demo", "Demo space", dial_in_id=DEMO_DIAL_IN),)
        )
    return server


def call_settings(config: Config) -> CallSettings:
    calls = config.calls
    return CallSettings(
        media_host=config.media.host,
        version_header=config.sip.version_header,
        dialplan=config.dialplan,
        lobby_timeout=calls.lobby_timeout_seconds,
        ringing_interval=calls.ringing_interval_seconds,
        lobby_answer=calls.lobby_mode == "answer",
        keys=KeyMap(mute=calls.mute_key, hand=calls.hand_key, mute_all=calls.mute_all_key),
        legacy_methods=frozenset(calls.legacy_signalling),
        modern_methods=frozenset(calls.modern_signalling),
        user_agents=tuple((match, frozenset(methods)) for match, methods in calls.user_agents),
        lobby_limit=config.limits.lobby_per_space,
        max_joining=config.limits.max_joining,
        menu=calls.menu,
        guesses=calls.guesses,
        proxies=config.limits.trusted_proxies,
    )


def serve(config: Config) -> int:
    """Run the daemon until SIGTERM/SIGINT; the process exit code."""
    logs.configure(json=config.ops.json_logs, level=config.ops.log_level, worker=config.worker)
    factory: Callable[[], Any] | None = None
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415  (optional: Linux only)

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        code = runner.run(run(config))
    # The loop restored the default handlers when it closed; a late SIGTERM (an impatient
    # supervisor) must not turn a clean drain into death by signal.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return code


def _raise_file_limit(wanted: int) -> None:
    """The relay holds three sockets a call: raise the soft file limit toward ``wanted`` (at most
    the hard limit, which the service manager sets: ``LimitNOFILE=``), and say so when it falls
    short, since calls beyond it would fail to bind."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < wanted:
        log.warning(
            "open file limit below what the media range needs",
            limit=soft,
            needed=wanted,
            hint="raise LimitNOFILE= or narrow [media] port_min..port_max",
        )
