"""Composition root of the conference server: the aiohttp application with its routes and Socket.IO,
and a runner the CLI (``spaces-bridge server``) or the daemon (embedded mode) starts in-process.
"""

from __future__ import annotations

import asyncio
import pathlib
import signal
import time
import uuid
from dataclasses import dataclass

import structlog
from aiohttp import web

from ...ops.http import start_ops
from ...ops.metrics import server_registry
from ...ops.notify import Notifier
from ...ops.web import serve
from ..wire import Role
from . import http
from .config import ServerConfig
from .local import LocalApi
from .media import MediaSync
from .mixer.config import INSTALL_HINT, JanusConfig
from .mixer.janus import JanusUnavailable
from .mixer.plane import MediaPlane
from .realtime import Realtime
from .sessions import Sessions
from .state import Conference
from .webrtc import BrowserAudio, refuse_audio

log = structlog.get_logger("bridge.conference.server")

MAX_BODY = 64 * 1024
"""Largest request body: the biggest legitimate one (an exclusion list of 500 ids) is ~20 KiB."""

REALTIME = web.AppKey("realtime", Realtime)


def new_conference(config: ServerConfig) -> Conference:
    """The conference state for ``config``, with uuid4 ids and the wall clock (for ``joinedAt``)."""
    return Conference(
        config.spaces, ids=lambda: uuid.uuid4().hex, now=time.time, capacity=config.meeting_capacity
    )


SHUTDOWN_TIMEOUT = 2.0
CONSOLE = pathlib.Path(__file__).parent / "console"
#: The console loads only its own files and talks only to this server (no inline script or style).
CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def add_console(app: web.Application) -> None:
    """The moderator console: ``/`` and its static files under ``/console/``."""

    async def index(request: web.Request) -> web.StreamResponse:
        del request
        return web.FileResponse(CONSOLE / "index.html", headers=CONSOLE_HEADERS)

    app.router.add_get("/", index)
    app.router.add_static("/console/", CONSOLE, append_version=False)


def build_app(
    config: ServerConfig, conference: Conference, plane: MediaPlane | None = None
) -> web.Application:
    """The aiohttp application: ``/api`` routes, ``/socket.io`` (namespace ``/chat``), JSON errors;
    with a media ``plane``, every publication brings the mixer in line first (``MediaSync``)."""
    app = web.Application(middlewares=[http.errors], client_max_size=MAX_BODY)
    realtime = Realtime(config, conference)
    app[http.CONFIG] = config
    app[http.CONFERENCE] = conference
    if plane is not None:
        sync = MediaSync(conference, plane, realtime)
        plane.on_endpoint_changed = sync.endpoint_changed
        plane.on_synced = sync.resync
        plane.on_talking = sync.talking
        # A socket's own reports (a self-unmute) reach the mixer like the REST routes' changes.
        realtime.publisher = sync
        audio = BrowserAudio(conference, sync, plane)
        plane.on_browser_lost = audio.lost
        plane.on_browser_candidate = audio.janus_candidate
        audio.attach(realtime)
        app[http.PUBLISHER] = sync
    else:
        refuse_audio(realtime)
        app[http.PUBLISHER] = realtime
    app[REALTIME] = realtime
    # Leaves of expired sessions go where the routes' events go (the mixer drops the phone too).
    sessions = Sessions(conference, app[http.PUBLISHER], config.session_timeout_seconds)
    sessions.attach(realtime)
    app[http.SESSIONS] = sessions
    http.add_routes(app)
    realtime.attach(app)
    add_console(app)

    async def close_sockets(app: web.Application) -> None:
        await app[REALTIME].close()
        # After the sockets: their departures would start leases of a server that is stopping.
        await app[http.SESSIONS].close()

    app.on_shutdown.append(close_sockets)
    return app


@dataclass(frozen=True, slots=True)
class Census:
    meetings: int
    attendees: int
    """Admitted attendees of the meetings in progress."""
    waiting: int
    """Attendees waiting in a lobby."""


@dataclass(slots=True)
class RunningServer:
    """A started conference server; ``close()`` stops it (sockets first, then HTTP)."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:8080`` (the real port when 0 was configured)."""
    config: ServerConfig
    conference: Conference
    runner: web.AppRunner
    plane: MediaPlane | None = None
    """The mixer, when the server has one and Janus could be started."""

    def census(self) -> Census:
        """The meetings in progress and who is in them now (for the server's metrics)."""
        meetings = attendees = waiting = 0
        for space_id in self.conference.space_ids():
            if self.conference.active_meeting_id(space_id) is None:
                continue
            meetings += 1
            for attendee in self.conference.attendees(space_id):
                if attendee.admitted:
                    attendees += 1
                else:
                    waiting += 1
        return Census(meetings, attendees, waiting)

    @property
    def mixer_up(self) -> bool:
        """Whether meetings have their audio now: the mixer runs and answers. False while Janus is
        down or restarting, and for good when it could not be started (not installed)."""
        return self.plane is not None and self.plane.reason is None

    @property
    def mixer_restarts(self) -> int:
        """Times the mixer was restarted after it died, since the server started."""
        return self.plane.janus.restarts if self.plane is not None else 0

    def not_ready(self) -> list[str]:
        """What keeps the server from serving meetings with audio (``/readyz`` of ``spaces-bridge
        server``): the same media-platform reason the bridge's ``/readyz`` gives."""
        problem = self.media_problem
        return [] if problem is None else [f"the media platform is down: {problem}"]

    @property
    def media_problem(self) -> str | None:
        """Why meetings have no audio now (for ``/readyz``), None when they do or never will."""
        if self.plane is None:
            return None
        return self.plane.reason

    @property
    def realtime(self) -> Realtime:
        """The Socket.IO side, which also hands events to listeners in this process."""
        return self.runner.app[REALTIME]

    def local_api(self) -> LocalApi:
        """The API for a client in this process: the same answers and events, without HTTP."""
        return LocalApi(self.config, self.conference, self.runner.app[http.PUBLISHER])

    async def close(self) -> None:
        """Stop accepting, disconnect sockets, finish requests in flight; then stop the mixer."""
        await self.runner.cleanup()
        if self.plane is not None:
            await self.plane.close()


async def start_server(config: ServerConfig, conference: Conference | None = None) -> RunningServer:
    """Start the server on ``config.host``/``config.port`` in the running loop; raises ``OSError``
    when the port cannot be bound."""
    conference = conference or new_conference(config)
    plane = await start_mixer(config.mixer) if config.mixer is not None else None
    # A stopping server waits at most 2 s for requests in flight (aiohttp's default is 60 s): a
    # browser console or a long poll must not hold up a restart.
    try:
        runner, url = await serve(
            build_app(config, conference, plane),
            config.host,
            config.port,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
    except OSError:
        if plane is not None:
            await plane.close()
        raise
    spaces = [s.id for s in config.spaces]
    log.info("conference server ready", url=url, spaces=spaces, config=config.source)
    if config.show_tokens:
        # Development default only: the console token is random and nobody else could know it.
        for entry in config.tokens:
            if entry.role is Role.MODERATOR:
                log.info("moderator token", name=entry.name, token=entry.token)
    return RunningServer(url, config, conference, runner, plane)


async def start_mixer(config: JanusConfig) -> MediaPlane | None:
    """Start the media platform; without Janus installed, say loudly why meetings will have no
    audio and how to fix it, and go on without (signalling still works)."""
    plane = MediaPlane(config)
    try:
        await plane.start()
    except JanusUnavailable as exc:
        log.error(  # noqa: TRY400  (an operator's problem, not a bug: no traceback)
            "NO MEETING AUDIO: the media platform cannot start",
            reason=str(exc),
            install=f"sudo {INSTALL_HINT}",
            hint="or set [media_server] enabled = false to silence this",
        )
        return None
    log.info(
        "media platform ready" if plane.ready else "media platform starting", janus=plane.janus.pid
    )
    return plane


async def run_server(
    config: ServerConfig,
    stop: asyncio.Event | None = None,
    ops: tuple[str, int] | None = None,
) -> int:
    """Run the server until SIGTERM/SIGINT (or ``stop`` is set); the process exit code. With
    ``ops`` (host, port), serve ``/metrics``, ``/healthz`` and ``/readyz`` there too."""
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # SIGHUP's default action would end the process and every meeting in it: a `kill -HUP`
        # meant for the bridges beside it must not. The server's table is read at start only.
        loop.add_signal_handler(
            signal.SIGHUP,
            lambda: log.warning("SIGHUP ignored: the conference server reads its file at start"),
        )
    try:
        server = await start_server(config)
    except OSError as exc:
        # An operator's problem (port in use), not a bug: the message, no traceback.
        log.error("cannot start conference server", error=str(exc))  # noqa: TRY400
        return 1
    runner = None
    if ops is not None:
        registry = server_registry(server, mixer=config.mixer is not None)
        try:
            runner, url = await start_ops(registry, server.not_ready, *ops)
        except OSError as exc:
            log.error("cannot start the operations endpoint", error=str(exc))  # noqa: TRY400
            await server.close()
            return 1
        log.info("operations endpoint", url=url, paths="/metrics /healthz /readyz")
    # Under systemd (Type=notify): ready once the API answers, the loop's watchdog, and stopping.
    notify = Notifier()
    notify.ready(f"serving {server.url}")
    await stop.wait()
    log.info("stopping conference server")
    notify.stopping("stopping")
    if runner is not None:
        await runner.cleanup()
    await server.close()
    notify.close()
    return 0
