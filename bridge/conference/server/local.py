"""The conference API called in-process, for the bridge and its embedded server.

The same routes (``http.ROUTES``), rules (``Conference``), token check and events (published to the
same Socket.IO rooms, before the answer) as over HTTP, and the same ``(status, JSON)`` answers; what
it saves is, for every call, encoding a request, a loopback connection and an HTTP parse on each
side, which cost more CPU than the SIP call they serve. A remote server is always called over HTTP.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

import structlog

from . import fields
from .config import ServerConfig
from .errors import ApiError, Unauthorized
from .http import INTERNAL, ROUTES, Publisher, Route, error_body
from .model import Caller
from .state import Conference

log = structlog.get_logger("bridge.conference.server.local")

_PARAM = re.compile(r"\{(\w+)\}")


def _pattern(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)
    # split() alternates literal text and parameter names: even indexes are literal.
    return re.compile(
        "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    )


class LocalApi:
    """Answers ``(method, path, token, body)`` as the HTTP server would, without HTTP."""

    def __init__(self, config: ServerConfig, conference: Conference, publisher: Publisher) -> None:
        self._config = config
        self._conference = conference
        self._publisher = publisher
        self._routes = [(route, _pattern(route.template)) for route in ROUTES]
        # A bridge's calls try only their method's routes; the rest matter only for a 405.
        self._by_method: dict[str, list[tuple[Route, re.Pattern[str]]]] = {}
        for route, pattern in self._routes:
            self._by_method.setdefault(route.method, []).append((route, pattern))

    async def request(
        self, method: str, path: str, token: str, body: Mapping[str, object] | None
    ) -> tuple[int, object]:
        found = self._match(method, path)
        if isinstance(found, int):
            reason = "Not Found" if found == 404 else "Method Not Allowed"
            code = reason.lower().replace(" ", "_")
            return found, error_body(code, f"{reason}: {method} {path}")
        route, params = found
        try:
            caller = self._caller(token)  # 401 before any 400, as over HTTP
            value = fields.body_object(body if body is not None else {}) if route.reads_body else {}
            answer = route.operation(self._conference, caller, params, value)
        except ApiError as exc:
            return exc.status, error_body(exc.code, exc.message)
        except Exception:
            log.exception("request failed", method=method, path=path)
            return 500, error_body(*INTERNAL)
        if isinstance(answer, list):
            return 200, answer
        await self._publisher.publish(answer.events)
        self._publisher.complete(answer)
        return (204, None) if answer.body is None else (route.status, answer.body)

    def _caller(self, token: str) -> Caller:
        caller = self._config.caller(token)
        if caller is None:
            raise Unauthorized
        return caller

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | int:
        for route, pattern in self._by_method.get(method, ()):
            match = pattern.fullmatch(path)
            if match is not None:
                return route, {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
        allowed = any(pattern.fullmatch(path) for _, pattern in self._routes)
        return 405 if allowed else 404
