"""The systemd notify protocol (sd_notify(3)), without libsystemd: a datagram to ``$NOTIFY_SOCKET``.

``READY=1`` once the listeners are up, ``WATCHDOG=1`` at half the interval systemd asks for in
``$WATCHDOG_USEC`` (so a stalled event loop gets the service restarted), ``STOPPING=1`` when a drain
starts, and ``STATUS=`` lines for ``systemctl status``. Outside systemd (no ``NOTIFY_SOCKET``) every
call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger("bridge.notify")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        # "@name" is a Linux abstract socket: the name starts with a NUL byte (sd_notify(3)).
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for; ignore it when it is not us.
        ours = not pid or (pid.isdigit() and int(pid) == os.getpid())
        self.watchdog_interval = int(usec) / 1e6 if usec.isdigit() and ours else None
        self._socket: socket.socket | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *fields: str) -> None:
        if not self._address:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            # systemd gone or the socket unwritable: the service keeps running either way.
            log.warning("cannot notify systemd", error=str(exc))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")
        self._start_watchdog()

    def stopping(self, status: str) -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def _start_watchdog(self) -> None:
        if self.watchdog_interval is None or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        half = self.watchdog_interval / 2

        def ping() -> None:
            # Sent from the event loop itself: if the loop stalls, the pings stop and systemd acts.
            self.send("WATCHDOG=1")
            self._timer = loop.call_later(half, ping)

        ping()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
