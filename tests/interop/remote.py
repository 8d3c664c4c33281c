"""A conference server in its own process, and a proxy in front of it that fails on demand.

:class:`FaultProxy` is a real HTTP and WebSocket reverse proxy (aiohttp, on loopback, in a thread
of the test process) between the daemon's ``[conference] url`` and a real ``spaces-bridge server``.
The test switches what it does to REST calls (pass, answer late, answer 5xx, reset the connection)
and can cut the Socket.IO connection and refuse new ones, while the moderator acts on the server
directly, behind the bridge's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

import aiohttp
from aiohttp import web

from tests.interop.harness import LOOPBACK, MODERATOR, ROOT, free_port

BRIDGE_TOKEN = "bridge-token-for-tests-0123456789"
#: The daemon reads its token for a remote server from this variable (see ``remote_config``).
TOKEN_ENV = {"SPACES_BRIDGE_TOKEN": BRIDGE_TOKEN}

# Hop-by-hop headers (RFC 9110 §7.6.1) and those aiohttp recomputes are not forwarded.
_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Accept",
    )
)

Mode = Literal["pass", "slow", "error", "reset"]


def remote_config(url: str, *, timeout: float = 5.0) -> str:
    """The daemon's ``[conference]`` table for a remote server at ``url``."""
    return (
        f'\n[conference]\nurl = "{url}"\ntoken_env = "SPACES_BRIDGE_TOKEN"\n'
        f"request_timeout_seconds = {timeout}\n"
    )


@contextlib.contextmanager
def conference_server(
    workdir: pathlib.Path,
    port: int,
    spaces: str = '[{ id = "demo" }]',
    extra: str = "",
    tables: str = "",
) -> Iterator[subprocess.Popen[bytes]]:
    """``spaces-bridge server`` on ``port`` with the console's and the bridge's tokens; ``extra``:
    more lines of its ``[server]`` table; ``tables``: more tables after it. Its log is
    ``workdir/server-<n>.log``."""
    config = workdir / "server.toml"
    config.write_text(
        f"""
[server]
port = {port}
{extra}
tokens = [
  {{ name = "console", role = "moderator", token = "{MODERATOR}" }},
  {{ name = "bridge", role = "bridge", token = "{BRIDGE_TOKEN}" }},
]
spaces = {spaces}
{tables}"""
    )
    log = workdir / f"server-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "server", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while "conference server ready" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        assert process.wait(10) == 0, log.read_text()


class FaultProxy:
    """Forwards to ``upstream`` until told to misbehave. Use as a context manager; ``url`` is
    what the daemon is given."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port(LOOPBACK)
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.mode: Mode = "pass"
        self.slow_seconds = 30.0
        self.error_status = 500
        self.sockets_blocked = False
        #: ``"METHOD /path"`` of every REST call that reached the proxy, in order.
        self.seen: list[str] = []
        #: When set, added as ``media`` to every 2xx answer of a join (POST …/attendees): the
        #: server then names a media endpoint, as one with a media plane does
        #: (docs/conference-api.md), e.g. ``{"rtp": {"ip": …, "port": …}, "codec": "PCMU",
        #: "payloadType": 0}``. The server's own ``app.event.attendee.media`` events (a server
        #: with its own mixer) are then held back, so that the bridge keeps this endpoint.
        self.join_media: dict[str, object] | None = None
        #: The ``media`` offer of every join request (where the bridge takes the meeting's audio).
        self.join_offers: list[dict[str, object]] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def drop_sockets(self) -> None:
        """Cut every Socket.IO connection at once, as a failing network would."""

        async def drop() -> None:
            for ws in list(self._sockets):
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(10)

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()

    async def _stop(self) -> None:
        self.mode = "pass"
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._socket(request)
        self.seen.append(f"{request.method} {request.path}")
        match self.mode:
            case "slow":
                # Until the test (or the proxy's shutdown) lets the server answer again.
                deadline = time.monotonic() + self.slow_seconds
                while self.mode == "slow" and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            case "error":
                error = {"error": {"code": "internal", "message": "injected fault"}}
                return web.json_response(error, status=self.error_status)
            case "reset":
                # After reading the request, as a server that crashed while handling it.
                await request.read()
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
        assert self._session is not None
        data = await request.read()
        join = request.method == "POST" and request.path.endswith("/attendees")
        if join:
            with contextlib.suppress(ValueError, AttributeError):  # not a JSON object: no offer
                self.join_offers.append(json.loads(data).get("media") or {})
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=_forwarded(request),
            data=data,
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            if join and self.join_media is not None and 200 <= answer.status < 300:
                body = json.dumps({**json.loads(body), "media": self.join_media}).encode()
            return web.Response(status=answer.status, body=body, headers=headers)

    def _held_back(self, message: str) -> bool:
        return self.join_media is not None and '"app.event.attendee.media"' in message

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if self.sockets_blocked:
            return web.Response(status=503, text="sockets blocked by the test")
        assert self._session is not None
        upstream = await self._session.ws_connect(
            self.upstream.replace("http", "ws", 1) + request.path_qs, headers=_forwarded(request)
        )
        client = web.WebSocketResponse()
        await client.prepare(request)
        self._sockets.add(client)
        try:
            pumps = [
                asyncio.ensure_future(_pump(upstream, client, self._held_back)),
                asyncio.ensure_future(_pump(client, upstream)),
            ]
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            self._sockets.discard(client)
            await upstream.close()
            await client.close()
        return client


def _forwarded(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() not in _HOP}


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    held_back: Callable[[str], bool] = lambda _: False,
) -> None:
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            if not held_back(message.data):
                await sink.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        else:
            return
