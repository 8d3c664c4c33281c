"""Janus as a supervised child process: :class:`JanusProcess`.

``start()`` writes a private runtime folder (:mod:`.config`), execs Janus in the foreground with it,
and returns once ``GET /janus/info`` answers with AudioBridge loaded (40-110 ms here). Janus's
stdout becomes log lines. A supervisor task restarts it with a doubling delay when it exits
without being asked to, and calls ``on_restart`` after each restart that answers, so that the
owner rebuilds its rooms: Janus keeps rooms made through the API in memory only. ``stop()`` sends
SIGTERM, then SIGKILL after a grace period, and removes the folder. docs/mixer.md describes all of
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable

import aiohttp
import structlog

from .config import (
    INSTALL_HINT,
    JanusConfig,
    JanusSecrets,
    find_libraries,
    library_dirs,
    render_configs,
    write_runtime,
)

__all__ = ["JanusConfig", "JanusProcess", "JanusSecrets", "JanusUnavailable"]

log = structlog.get_logger("bridge.conference.server.mixer")

LINE_LIMIT = 400
"""Longest Janus output line logged, in characters (a JSON dump can run to kilobytes)."""
POLL_INTERVAL = 0.01
"""How often a start asks ``/janus/info`` whether Janus answers yet."""
REDACTED = "<redacted>"


class JanusUnavailable(RuntimeError):  # noqa: N818  (a state, as the server reports it)
    """Janus or one of the two libraries it needs is not installed: nothing a restart can fix."""


def free_port(host: str) -> int:
    """A TCP port free on ``host`` right now (Janus binds it a few ms later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class JanusProcess:
    """One Janus child process at a time, restarted when it dies. Use from one event loop."""

    def __init__(
        self, config: JanusConfig, on_restart: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.config = config
        self.on_restart = on_restart
        """Awaited after each successful restart (not after the first start)."""
        self.secrets = JanusSecrets.generate()
        self.restarts = 0
        """Successful restarts since ``start()``."""
        self.start_seconds: float | None = None
        """How long the last successful (re)start took, exec to ``/janus/info`` answering."""
        self._reason: str | None = "janus is not started"
        self._process: asyncio.subprocess.Process | None = None
        self._stdout_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._folder: pathlib.Path | None = None
        self._http_port = 0
        self._admin_port = 0
        self._stopping = False
        self._launched_at = 0.0

    @property
    def ready(self) -> bool:
        """Janus runs and answered since it last (re)started."""
        return self._reason is None

    @property
    def reason(self) -> str | None:
        """Why Janus is not ready (for ``/readyz``), None while it is."""
        return self._reason

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def api_url(self) -> str:
        """The Janus API's base URL (``.../janus``) of the running process."""
        return f"http://{self.config.host}:{self._http_port}/janus"

    @property
    def admin_url(self) -> str:
        return f"http://{self.config.host}:{self._admin_port}/admin"

    @property
    def runtime_folder(self) -> pathlib.Path | None:
        return self._folder

    def redact(self, text: str) -> str:
        """``text`` with every secret of this process replaced."""
        for value in self.secrets.values():
            text = text.replace(value, REDACTED)
        return text

    async def start(self) -> None:
        """Start Janus and its supervisor. Raises :class:`JanusUnavailable` when it is not
        installed; a first start that fails otherwise leaves ``ready`` False and the supervisor
        retrying (``on_restart`` follows its success)."""
        executable = self.config.executable
        if executable is None or not os.access(executable, os.X_OK):
            raise JanusUnavailable(f"janus is not installed ({executable}): {INSTALL_HINT}")
        libraries = find_libraries(self.config)
        if libraries is None:
            where = ", ".join(str(p) for p in library_dirs(self.config))
            raise JanusUnavailable(
                f"janus's AudioBridge or HTTP library is not in {where}: {INSTALL_HINT}"
            )
        self._stopping = False
        # mkdtemp makes the folder 0700: the configuration files hold the secrets.
        self._folder = pathlib.Path(
            tempfile.mkdtemp(prefix="spaces-janus-", dir=self.config.runtime_parent)
        )
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0))
        started = await self._launch(executable, libraries)
        self._supervisor = asyncio.create_task(
            self._supervise(executable, libraries, started), name="janus supervisor"
        )

    async def stop(self) -> None:
        """Stop the supervisor and Janus, then remove the runtime folder."""
        self._stopping = True
        self._reason = "janus is stopped"
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._terminate()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    async def _launch(self, executable: str, libraries: dict[str, pathlib.Path]) -> bool:
        """One exec, until Janus answers (True) or exits or times out (False, killed)."""
        assert self._folder is not None
        self._http_port = self.config.http_port or free_port(self.config.host)
        self._admin_port = self.config.admin_port or free_port(self.config.host)
        configs = render_configs(
            self.config, self.secrets, self._folder, self._http_port, self._admin_port
        )
        write_runtime(self._folder, configs, libraries)
        command = [
            executable,
            f"--configs-folder={self._folder}",
            f"--config={self._folder / 'janus.jcfg'}",
            "--disable-colors",
        ]
        # Janus dies with us even when we are killed (systemd kills the whole group anyway; a
        # test run or a shell does not): setpriv sets the parent-death signal, then execs it.
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            command = [setpriv, "--pdeathsig", "KILL", "--", *command]
        began = time.monotonic()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self._folder,
                # Its own session: a terminal's Ctrl-C reaches the bridge only, which then stops
                # Janus in order (after the calls' drain), not Janus at once.
                start_new_session=True,
                limit=1 << 20,
            )
        except OSError as exc:
            self._reason = f"janus could not be run: {exc.strerror or exc}"
            log.warning("janus start failed", reason=self._reason)
            return False
        self._stdout_task = asyncio.create_task(
            self._pipe_stdout(self._process), name="janus stdout"
        )
        problem = await self._wait_answering(self._process, began + self.config.start_timeout)
        if problem is not None:
            self._reason = problem
            log.warning("janus start failed", reason=problem, pid=self._process.pid)
            await self._terminate()
            return False
        self._launched_at = time.monotonic()
        self.start_seconds = self._launched_at - began
        self._reason = None
        log.info(
            "janus started",
            pid=self._process.pid,
            port=self._http_port,
            ms=round(self.start_seconds * 1000, 1),
        )
        return True

    async def _wait_answering(
        self, process: asyncio.subprocess.Process, deadline: float
    ) -> str | None:
        """None once ``/janus/info`` answers with AudioBridge, else why not."""
        assert self._http is not None
        while time.monotonic() < deadline:
            if process.returncode is not None:
                return f"janus exited with code {process.returncode} while starting"
            try:
                async with self._http.get(f"{self.api_url}/info") as response:
                    info = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                await asyncio.sleep(POLL_INTERVAL)
                continue
            plugins = info.get("plugins", {}) if isinstance(info, dict) else {}
            if "janus.plugin.audiobridge" not in plugins:
                return "janus answers without its AudioBridge plugin"
            return None
        return f"janus did not answer within {self.config.start_timeout} s"

    async def _supervise(
        self, executable: str, libraries: dict[str, pathlib.Path], running: bool
    ) -> None:
        delay = self.config.restart_delay
        while not self._stopping:
            if running:
                assert self._process is not None
                code = await self._process.wait()
                if self.stopping:  # stop() is under way: this exit is its own
                    return
                await self._drain_stdout()  # its last words first
                uptime = time.monotonic() - self._launched_at
                if uptime >= self.config.stable_after:
                    delay = self.config.restart_delay
                self._reason = f"janus exited with code {code}; restarting"
                log.warning("janus exited", code=code, uptime_s=round(uptime, 1), retry_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.restart_delay_max)
            running = await self._launch(executable, libraries)
            if running:
                self.restarts += 1
                if self.on_restart is not None:
                    try:
                        await self.on_restart()
                    except Exception:
                        log.exception("janus restart callback failed")

    async def _terminate(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.config.stop_grace)
            except TimeoutError:
                log.warning("janus ignored SIGTERM; killing it", pid=process.pid)
                process.kill()
                await process.wait()
        await self._drain_stdout()

    async def _drain_stdout(self) -> None:
        """Wait for the pipe's EOF (Janus is gone), so that its last lines are logged."""
        if self._stdout_task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._stdout_task, 1.0)
            self._stdout_task = None

    async def _pipe_stdout(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        pid = process.pid
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line over the reader's limit: dropped, not fatal
                continue
            if not raw:
                return
            line = self.redact(raw.decode("utf-8", "replace").rstrip())
            if not line:
                continue
            if len(line) > LINE_LIMIT:
                line = line[:LINE_LIMIT] + "…"
            # Janus's errors (a port range exhausted, a socket it cannot bind) matter to an
            # operator; the rest is its chatter.
            if line.startswith("[ERR]"):
                log.warning("janus", line=line, pid=pid)
            else:
                log.debug("janus", line=line, pid=pid)
