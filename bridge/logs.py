"""structlog set-up: readable key=value lines (coloured on a terminal), or JSON lines for collectors."""

from __future__ import annotations

import logging
import re
import sys

import structlog


def configure(*, json: bool = False, level: int = logging.INFO) -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if json:
        processors.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


#: Credentials in a SIP message: digest responses (RFC 3261 §22) and bearer tokens.
_SECRET_HEADERS = re.compile(
    r"^((?:Proxy-)?Authorization[ \t]*:)[^\r\n]*", re.IGNORECASE | re.MULTILINE
)


def redacted(data: bytes, limit: int = 4096) -> str:
    """A SIP message for the trace log: text, at most ``limit`` bytes, credentials removed."""
    text = data[:limit].decode("utf-8", "replace")
    return _SECRET_HEADERS.sub(r"\1 <redacted>", text)
