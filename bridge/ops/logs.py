"""structlog set-up: readable key=value lines (coloured on a terminal), or JSON lines for collectors."""

from __future__ import annotations

import functools
import logging
import re
import sys

import structlog

#: Bumped by every ``configure``: loggers bound and kept by their owners (a call's) are rebound
#: when it changes, so that a reload reaches them too.
generation = 0


def configure(
    *, json: bool = False, level: int | str = logging.INFO, worker: int | None = None
) -> None:
    """(Re)configure logging; ``level`` is a ``logging`` number or a name such as ``"debug"``;
    ``worker`` (the process's index when several share the listeners) is added to every line."""
    global generation  # noqa: PLW0603  (one process-wide configuration, as structlog's own)
    generation += 1
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if worker is not None:
        # A processor rather than context variables: every line gets it, whatever context the
        # event loop runs a callback in, and it is set again with the rest on a reload.
        processors.append(functools.partial(_add_worker, worker))
    renderer: structlog.typing.Processor
    if json:
        processors.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One shared writer: a factory that builds a logger per call costs more than the line.
        logger_factory=functools.partial(_shared, structlog.WriteLogger(sys.stderr)),
        # Not cached: a reload (SIGHUP) may change the level or the format of every logger,
        # including module-level ones created before.
        cache_logger_on_first_use=False,
    )


#: Credentials in a SIP message: digest responses (RFC 3261 §22) and bearer tokens.
_SECRET_HEADERS = re.compile(
    r"^((?:Proxy-)?Authorization[ \t]*:)[^\r\n]*", re.IGNORECASE | re.MULTILINE
)


def redacted(data: bytes, limit: int = 4096) -> str:
    """A SIP message for the trace log: text, at most ``limit`` bytes, credentials removed."""
    text = data[:limit].decode("utf-8", "replace")
    return _SECRET_HEADERS.sub(r"\1 <redacted>", text)


def _add_worker(
    worker: int, logger: object, name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    event.setdefault("worker", worker)
    return event


def _shared(logger: structlog.WriteLogger, *_args: object) -> structlog.WriteLogger:
    return logger
