"""``[ops]``: the operations endpoint and the logs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..sip.address import host_text
from .values import ConfigError
from .values import get as _get
from .values import host as _host
from .values import known as _known
from .values import port as _port

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class OpsConfig:
    """The operations endpoint: ``/metrics``, ``/healthz``, ``/readyz``."""

    listen: str | None = "127.0.0.1:9091"
    """``host:port`` to serve on; an empty string turns it off."""
    json_logs: bool = False
    """JSON lines (for collectors) instead of key=value lines."""
    log_level: str = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""
    sip_trace: bool = False
    """Log every SIP message in and out (Authorization headers redacted); for debugging only."""

    @property
    def address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def share(self, index: int) -> OpsConfig:
        """Worker ``index``'s endpoint: the configured port + ``index`` (port 0 stays "any")."""
        address = self.address
        if address is None or index == 0 or address[1] == 0:
            return self
        host, port = address
        return replace(self, listen=f"{host_text(host)}:{port + index}")


_DEFAULT = OpsConfig()


def read_ops(data: Mapping[str, Any], source: str) -> OpsConfig:
    _known(data, ("listen", "json_logs", "log_level", "sip_trace"), source, "ops.")
    listen = _get(data, "listen", str, source, "ops.", _DEFAULT.listen)
    if listen:
        host, _, port = listen.rpartition(":")
        if not port.isdigit():
            raise ConfigError(source, "ops.listen", f'expected "host:port", got {listen!r}')
        _host(host, source, "ops.listen")
        _port(int(port), source, "ops.listen")
    json_logs = _get(data, "json_logs", bool, source, "ops.", _DEFAULT.json_logs)
    sip_trace = _get(data, "sip_trace", bool, source, "ops.", _DEFAULT.sip_trace)
    level = _get(data, "log_level", str, source, "ops.", _DEFAULT.log_level).lower()
    if level not in LOG_LEVELS:
        raise ConfigError(
            source, "ops.log_level", f"expected {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}"
        )
    return OpsConfig(
        listen=listen or None, json_logs=json_logs, log_level=level, sip_trace=sip_trace
    )
