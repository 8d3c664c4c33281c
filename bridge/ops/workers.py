"""Worker processes that share the SIP listeners (``[sip] workers``, docs/decisions.md).

With ``workers = 1`` none of this runs: ``spaces-bridge run`` is the daemon itself. With more, the
process that systemd starts is the supervisor. It starts each worker as a new interpreter running
``spaces-bridge run --config FILE --worker I/N``: a full daemon (event loop, transactions, dialogs,
calls) bound to the same SIP addresses with SO_REUSEPORT, on its own slice of the media ports and
its own operations port (``Config.for_worker``).

The workers speak the systemd notify protocol to the supervisor, through a socket it passes as
their ``NOTIFY_SOCKET``: the supervisor sends ``READY=1`` to systemd once every worker has, and
``WATCHDOG=1`` only while every worker pings. It forwards SIGTERM/SIGINT (drain) and SIGHUP
(reload). A worker that ends on its own ends the service: the others drain and the supervisor
exits 1, for systemd to restart the unit. Workers get SIGTERM from the kernel if the supervisor
dies (``PR_SET_PDEATHSIG``), so none outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ..config import Config, ConfigError
from . import logs
from .notify import Notifier

log = structlog.get_logger("bridge.workers")

#: After the drain's own limits (``[drain]``), how long workers may take to close before they are
#: killed: leaving meetings and closing connections normally takes well under a second.
STOP_MARGIN = 10.0
#: prctl(2) option: the signal the kernel sends a process when its parent dies.
_PR_SET_PDEATHSIG = 1
#: ``struct ucred`` (pid, uid, gid), the sender's credentials on a SO_PASSCRED socket.
_UCRED = struct.Struct("iII")


def worker_config(config: Config, spec: str) -> Config:
    """The configuration of worker ``spec`` (``"I/N"``, from the supervisor's command line)."""
    index_text, _, count_text = spec.partition("/")
    if not (index_text.isdigit() and count_text.isdigit()):
        raise ConfigError(config.source, "sip.workers", f"bad worker index {spec!r}")
    index, count = int(index_text), int(count_text)
    if count != config.sip.workers:
        # The file changed between the supervisor's reading and ours: the slices of the media
        # range and the ops ports would no longer fit together.
        raise ConfigError(
            config.source,
            "sip.workers",
            f"is {config.sip.workers} in the file, the supervisor started {count}: restart",
        )
    if not 0 <= index < count:
        raise ConfigError(config.source, "sip.workers", f"no worker {index} of {count}")
    return config.for_worker(index)


@dataclass(slots=True)
class Worker:
    index: int
    process: subprocess.Popen[bytes]
    pidfd: int
    ready: bool = False
    pinged: bool = False

    @property
    def running(self) -> bool:
        return self.process.returncode is None


class Supervisor:
    """Starts the workers, relays signals and readiness, and ends with them."""

    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop, notify: Notifier) -> None:
        self._config = config
        self._loop = loop
        self._notify = notify
        # The supervisor's own loop being alive says nothing of the workers': systemd is pinged
        # only when every worker has pinged (see _on_message), never by a timer here.
        self._watchdog_interval, notify.watchdog_interval = notify.watchdog_interval, None
        self._inbox = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        )
        # The kernel stamps each datagram with its sender's pid: only our workers are heard.
        self._inbox.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        # An abstract socket: nothing on the file system, which ProtectSystem=strict keeps
        # read-only, and nothing left behind if the supervisor is killed.
        name = f"spaces-bridge-{os.getpid()}-{secrets.token_hex(8)}"
        self._inbox.bind("\0" + name)
        self._inbox_name = "@" + name
        self.workers: list[Worker] = []
        self._stop = asyncio.Event()
        self._all_exited = asyncio.Event()
        self._stopping = False
        self._failed: Worker | None = None

    def start(self) -> None:
        self._loop.add_reader(self._inbox.fileno(), self._on_message)
        count = self._config.sip.workers
        log.info("starting workers", workers=count, config=self._config.source)
        for index in range(count):
            self.workers.append(self._spawn(index, count))

    def _spawn(self, index: int, count: int) -> Worker:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        }
        env["NOTIFY_SOCKET"] = self._inbox_name
        if self._watchdog_interval is not None:
            env["WATCHDOG_USEC"] = str(int(self._watchdog_interval * 1e6))
        command = [sys.executable, "-m", "bridge", "run", "--config", self._config.source]
        process = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            [*command, "--worker", f"{index}/{count}"],
            stdin=subprocess.DEVNULL,
            env=env,
            # The supervisor runs no threads (exits are watched through pidfds, not a child
            # watcher thread), so running code between fork and exec is safe here.
            preexec_fn=_orphan_guard(os.getpid()),  # noqa: PLW1509
        )
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError:
            process.kill()
            process.wait()
            raise
        worker = Worker(index, process, pidfd)
        self._loop.add_reader(pidfd, self._reaped, worker)
        log.info("worker started", worker=index, pid=process.pid)
        return worker

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stopping")
        self._stop.set()

    def reload(self) -> None:
        # A worker not yet ready may not have its SIGHUP handler yet (the signal would end it),
        # and it is reading the file now anyway.
        ready = [w for w in self.workers if w.running and w.ready]
        log.info("reload: forwarding SIGHUP", workers=[w.index for w in ready])
        for worker in ready:
            worker.process.send_signal(signal.SIGHUP)

    def _reaped(self, worker: Worker) -> None:
        if worker.process.poll() is None:
            return
        self._loop.remove_reader(worker.pidfd)
        os.close(worker.pidfd)
        code = worker.process.returncode
        if self._stopping:
            log.info("worker exited", worker=worker.index, pid=worker.process.pid, code=code)
        elif self._failed is None:
            log.error(
                "worker ended unexpectedly: stopping the others",
                worker=worker.index,
                pid=worker.process.pid,
                code=code,
            )
            self._failed = worker
            self._stop.set()
        if not any(w.running for w in self.workers):
            self._all_exited.set()
        self._forward_watchdog()

    def _on_message(self) -> None:
        while True:
            try:
                data, ancillary, _, _ = self._inbox.recvmsg(4096, socket.CMSG_SPACE(_UCRED.size))
            except BlockingIOError:
                return
            pid = _sender(ancillary)
            worker = next((w for w in self.workers if w.process.pid == pid), None)
            if worker is None:
                continue
            fields = data.decode("utf-8", "replace").split("\n")
            if "READY=1" in fields and not worker.ready:
                worker.ready = True
                log.info("worker ready", worker=worker.index, pid=pid)
                if all(w.ready for w in self.workers) and not self._stop.is_set():
                    listen = ", ".join(str(item) for item in self._config.sip.listen)
                    log.info("spaces-bridge ready", workers=len(self.workers), listen=listen)
                    self._notify.ready(f"{len(self.workers)} workers listening on {listen}")
            if "WATCHDOG=1" in fields:
                worker.pinged = True
                self._forward_watchdog()

    def _forward_watchdog(self) -> None:
        running = [w for w in self.workers if w.running]
        if running and all(w.pinged for w in running):
            self._notify.send("WATCHDOG=1")
            for worker in running:
                worker.pinged = False

    async def wait(self) -> int:
        """Until a signal or a worker's exit; then stop every worker. The exit code."""
        await self._stop.wait()
        self._stopping = True
        running = [w for w in self.workers if w.running]
        self._notify.stopping(f"draining {len(running)} workers")
        for worker in running:
            worker.process.send_signal(signal.SIGTERM)
        drain = self._config.drain
        limit = drain.grace_seconds + drain.bye_wait_seconds + STOP_MARGIN
        if running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_exited.wait(), limit)
            if not self._all_exited.is_set():
                left = [w.index for w in self.workers if w.running]
                log.error("workers did not stop in time: killing them", workers=left)
                return 1
        clean = (0, -signal.SIGTERM, -signal.SIGINT)
        unclean = [w.index for w in self.workers if w.process.returncode not in clean]
        if self._failed is not None or unclean:
            return 1
        log.info("stopped")
        return 0

    def close(self) -> None:
        """Kill what still runs (only after a failure or a timeout) and release the sockets."""
        for worker in self.workers:
            if worker.running:
                worker.process.kill()
                worker.process.wait()
                self._loop.remove_reader(worker.pidfd)
                os.close(worker.pidfd)
        self._loop.remove_reader(self._inbox.fileno())
        self._inbox.close()
        self._notify.close()


def _sender(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, _, _ = _UCRED.unpack(data[: _UCRED.size])
            return int(pid)
    return None


def _orphan_guard(parent: int) -> Callable[[], None]:
    """Runs in the new process before exec: SIGTERM (a drain) when the supervisor dies, however
    it dies (systemd's stop reaches the whole cgroup anyway; a container or a shell may not)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def guard() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            # The supervisor died before the guard was set: nobody would stop this worker.
            os._exit(1)

    return guard


async def _supervise(config: Config) -> int:
    loop = asyncio.get_running_loop()
    supervisor = Supervisor(config, loop, Notifier())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.request_stop)
    loop.add_signal_handler(signal.SIGHUP, supervisor.reload)
    try:
        try:
            supervisor.start()
        except OSError as exc:
            # As the daemon's "cannot start": the operator's problem, told without a traceback.
            log.error("cannot start workers", error=str(exc))  # noqa: TRY400
            return 1
        return await supervisor.wait()
    finally:
        supervisor.close()


def supervise(config: Config) -> int:
    """Run ``config.sip.workers`` workers until SIGTERM/SIGINT or one's end; the exit code."""
    logs.configure(json=config.ops.json_logs, level=config.ops.log_level)
    code = asyncio.run(_supervise(config))
    # As the daemon's serve(): a late signal must not turn a clean stop into death by signal.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return code
