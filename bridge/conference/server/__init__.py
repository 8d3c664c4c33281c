"""The conference server (docs/conference-api.md): pure rules in ``state``, thin aiohttp and
Socket.IO adapters.

``bridge.conference.server.app`` is this package's composition root; ``bridge/app.py`` and ``bridge/cli.py``
start it through ``start_server`` / ``run_server``.
"""
