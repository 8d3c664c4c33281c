"""The operations endpoint: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` (SPEC §9).

``/healthz`` says the process and its event loop answer. ``/readyz`` says the bridge can take calls:
its SIP listeners are up and the conference server's event stream is connected; otherwise 503 with
the reasons, so that a load balancer sends phones elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import Metrics

Readiness = Callable[[], list[str]]
"""Returns what keeps the bridge from being ready (empty: ready)."""


def build_ops_app(metrics: Metrics, not_ready: Readiness) -> web.Application:
    async def scrape(request: web.Request) -> web.Response:
        del request
        body = generate_latest(metrics.registry)
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
    metrics: Metrics, not_ready: Readiness, host: str, port: int
) -> tuple[web.AppRunner, str]:
    """Serve the endpoint on ``host:port``; returns the runner (to clean up) and its base URL."""
    runner = web.AppRunner(build_ops_app(metrics, not_ready), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"
