"""The ``spaces-bridge`` command: run, server, check-config, version."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from . import __version__
from .config import ConfigError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaces-bridge",
        description="Lets SIP phones take part in Spaces web meetings.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bridge daemon")
    run.add_argument("--config", metavar="FILE", help="TOML configuration (default: built-in)")
    # Given by the supervisor to the processes it starts ([sip] workers): "index/count".
    run.add_argument("--worker", metavar="I/N", help=argparse.SUPPRESS)
    server = commands.add_parser("server", help="run the conference server on its own")
    server.add_argument(
        "--config", metavar="FILE", help="TOML file whose [server] table configures it"
    )
    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file", metavar="FILE")
    commands.add_parser("version", help="print the version")
    args = parser.parse_args(argv)

    if args.command == "version":
        print(f"spaces-bridge {__version__}")
        return 0
    if args.command == "server":
        return _server(args.config)
    try:
        config = load(args.file if args.command == "check-config" else args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{config.source}: OK")
        return 0
    if args.worker is not None or config.sip.workers > 1:
        from .ops import workers  # noqa: PLC0415  (only when several processes share the listeners)

        if args.worker is None:
            return workers.supervise(config)
        try:
            config = workers.worker_config(config, args.worker)
        except ConfigError as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
    from .app import serve  # noqa: PLC0415  (imported late: check-config and version need no event loop)

    return serve(config)


def _server(path: str | None) -> int:
    """The conference server alone: the ``[server]`` table of ``path``, or 127.0.0.1:8080 with the
    demo space and a fresh moderator token (printed at start)."""
    import asyncio  # noqa: PLC0415  (the other commands need no event loop)
    import secrets  # noqa: PLC0415

    from .conference.server.app import run_server  # noqa: PLC0415
    from .conference.server.config import embedded_default  # noqa: PLC0415
    from .conference.server.mixer.config import JanusConfig  # noqa: PLC0415
    from .ops import logs  # noqa: PLC0415

    ops, json_logs, log_level = None, False, "info"
    if path is None:
        server_config = replace(embedded_default(secrets.token_urlsafe(16)), mixer=JanusConfig())
    else:
        try:
            config = load(path)
        except ConfigError as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        if config.server is None:
            print(f"configuration error: {path}: server: no [server] table", file=sys.stderr)
            return 2
        server_config = replace(config.server, mixer=config.media_server)
        if "ops" in config.tables:
            ops = config.ops.address
        json_logs, log_level = config.ops.json_logs, config.ops.log_level
    logs.configure(json=json_logs, level=log_level)
    return asyncio.run(run_server(server_config, ops=ops))


if __name__ == "__main__":
    sys.exit(main())
