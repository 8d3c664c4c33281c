"""Janus as a supervised child: start, stop, restart after a crash, secrets kept out of the log, and
the errors when it is not installed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import structlog

from bridge.conference.server.mixer.config import AUDIOBRIDGE_LIBRARY, HTTP_LIBRARY, JanusConfig
from bridge.conference.server.mixer.janus import JanusProcess, JanusUnavailable

TIMEOUT = 20.0


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


@contextlib.contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Every log event, debug included, as the dict structlog renders."""
    saved = structlog.get_config()
    events: list[dict[str, Any]] = []

    def keep(_logger: object, _name: str, event: Any) -> Any:
        events.append(dict(event))
        raise structlog.DropEvent

    structlog.configure(
        processors=[keep],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield events
    finally:
        structlog.configure(**saved)


def state(process: JanusProcess) -> tuple[int | None, bool, str | None]:
    """Read afresh (a helper, so that the type checker does not carry an earlier reading over)."""
    return process.pid, process.ready, process.reason


async def info(process: JanusProcess) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{process.api_url}/info") as response:
        answer: dict[str, Any] = await response.json(content_type=None)
        return answer


def test_janus_starts_answers_and_stops_leaving_nothing(janus_config: JanusConfig) -> None:
    async def scenario() -> None:
        process = JanusProcess(janus_config)
        await process.start()
        try:
            assert process.ready and process.reason is None
            assert process.start_seconds is not None and process.start_seconds < 2.0
            print(f"janus answered {process.start_seconds * 1000:.0f} ms after exec")
            answer = await info(process)
            assert answer["version_string"] == "1.1.2" or answer["version"] >= 1102
            assert set(answer["plugins"]) == {"janus.plugin.audiobridge"}
            assert set(answer["transports"]) == {"janus.transport.http"}
            folder = process.runtime_folder
            assert folder is not None
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            pid = process.pid
            assert pid is not None
        finally:
            began = time.monotonic()
            await process.stop()
        print(f"janus stopped {time.monotonic() - began:.2f} s after SIGTERM")
        assert not folder.exists()
        assert state(process) == (None, False, "janus is stopped")
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    run(scenario())


def test_the_supervisor_restarts_a_killed_janus(janus_config: JanusConfig) -> None:
    async def scenario() -> None:
        restarted = asyncio.Event()
        reasons: list[str | None] = []

        async def on_restart() -> None:
            restarted.set()

        process = JanusProcess(replace(janus_config, restart_delay=0.1), on_restart=on_restart)
        await process.start()
        try:
            for round_ in (1, 2):
                pid = process.pid
                assert pid is not None
                restarted.clear()
                os.kill(pid, signal.SIGKILL)
                while process.reason is None:  # until the supervisor notices
                    await asyncio.sleep(0.005)
                reasons.append(process.reason)
                began = time.monotonic()
                await asyncio.wait_for(restarted.wait(), 5.0)
                print(f"restart {round_}: ready {time.monotonic() - began:.2f} s after the kill")
                assert process.ready and process.restarts == round_ and process.pid != pid
                assert (await info(process))["janus"] == "server_info"
        finally:
            await process.stop()
        assert reasons == ["janus exited with code -9; restarting"] * 2

    run(scenario())


def test_no_secret_reaches_the_log(janus_config: JanusConfig) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        # At level 5 Janus prints its configuration, secrets included: the pipe redacts them.
        process = JanusProcess(replace(janus_config, debug_level=5))
        with captured_logs() as events:
            await process.start()
            await asyncio.sleep(0.1)
            await process.stop()
        return events, process.secrets.values()

    events, secrets = run(scenario())
    lines = [str(event) for event in events]
    assert any(event.get("line") for event in events)  # Janus's output was logged
    assert not [line for line in lines if any(secret in line for secret in secrets)]
    assert any("<redacted>" in line for line in lines)


def test_a_janus_that_is_not_installed_names_the_install_command(tmp_path: pathlib.Path) -> None:
    with pytest.raises(JanusUnavailable, match="apt-get install janus"):
        run(JanusProcess(JanusConfig(executable=None)).start())
    empty = JanusConfig(executable="/bin/true", library_dir=str(tmp_path))
    with pytest.raises(JanusUnavailable, match="apt-get install janus"):
        run(JanusProcess(empty).start())


def test_a_janus_that_cannot_start_is_retried(tmp_path: pathlib.Path) -> None:
    for kind, name in (("plugins", AUDIOBRIDGE_LIBRARY), ("transports", HTTP_LIBRARY)):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / name).write_bytes(b"")
    config = JanusConfig(executable="/bin/false", library_dir=str(tmp_path), restart_delay=0.05)

    async def scenario() -> None:
        process = JanusProcess(config)
        await process.start()
        try:
            assert not process.ready
            assert process.reason == "janus exited with code 1 while starting"
            await asyncio.sleep(0.3)  # the supervisor retries (and fails) meanwhile
            assert not process.ready and process.restarts == 0
        finally:
            await process.stop()
        assert process.reason == "janus is stopped"

    run(scenario())
