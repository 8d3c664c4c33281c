"""Starting an aiohttp application on one address: the operations endpoint and the conference server
both serve this way."""

from __future__ import annotations

from aiohttp import web

from ..sip.address import host_text


async def serve(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 60.0
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0 picks a free port); returns the runner (whose ``cleanup``
    stops it) and the base URL with the real port. Raises ``OSError`` when the port cannot be bound,
    after releasing what was set up."""
    # The daemon owns the signals (drain on SIGTERM), and access logs would repeat every scrape.
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    return runner, f"http://{host_text(bound_host)}:{bound_port}"
