"""The operations endpoint: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``
(docs/operations.md).

``/healthz`` says the process and its event loop answer. ``/readyz`` says the bridge can take calls:
its SIP listeners are up and the conference server's event stream is connected; otherwise 503 with
the reasons, so that a load balancer sends phones elsewhere. ``spaces-bridge server`` serves the same
three paths for the conference server alone, with its own readiness and metrics.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .web import serve

Readiness = Callable[[], list[str]]
"""Returns what keeps the bridge from being ready (empty: ready)."""


def build_ops_app(registry: CollectorRegistry, not_ready: Readiness) -> web.Application:
    async def scrape(request: web.Request) -> web.Response:
        del request
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        del request
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        del request
        reasons = not_ready()
        if reasons:
            return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_ops(
    registry: CollectorRegistry, not_ready: Readiness, host: str, port: int
) -> tuple[web.AppRunner, str]:
    """Serve the endpoint on ``host:port``; returns the runner (to clean up) and its base URL."""
    return await serve(build_ops_app(registry, not_ready), host, port)
