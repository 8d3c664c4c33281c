"""Acting as the meeting's moderator through the real REST API of a running daemon's server."""

from __future__ import annotations

import concurrent.futures
import json
import pathlib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.interop.harness import MODERATOR, Daemon, explain, sipp
from tests.interop.scenario import Phone


class Moderator:
    """REST calls with the moderator token; ``space`` picks the meeting."""

    def __init__(self, daemon: Daemon, space: str = "demo", token: str = MODERATOR) -> None:
        self.base = daemon.api_url()
        self.space = space
        self.token = token

    @classmethod
    def at(cls, url: str, space: str = "demo", token: str = MODERATOR) -> Moderator:
        """The moderator of a conference server at ``url`` (one the daemon did not start)."""
        moderator = cls.__new__(cls)
        moderator.base, moderator.space, moderator.token = url, space, token
        return moderator

    def call(self, method: str, path: str, body: object = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "accept-version": "1.1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                data = answer.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from None
        return json.loads(data) if data else None

    @property
    def meeting(self) -> str:
        return f"/api/spaces/{self.space}/meetings/{self.meeting_id}"

    @property
    def meeting_id(self) -> str:
        return str(self.call("GET", f"/api/spaces/{self.space}/activemeeting")["meetingId"])

    def details(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", self.meeting)
        return result

    def phone(self, name: str | None = "Desk Phone 1", timeout: float = 10.0) -> dict[str, Any]:
        """The roster entry (or lobby entry) of the phone called ``name`` (None: any phone), once it
        has joined."""
        entry: dict[str, Any] = self.wait_for(
            lambda d: next(
                (
                    a
                    for a in [*d["attendees"], *d["lobby"]]
                    if name in (None, a["displayName"]) and a["attendeeType"] == "phone"
                ),
                None,
            ),
            timeout,
            f"phone {name!r} in the meeting",
        )
        return entry

    def wait_for(
        self, find: Callable[[dict[str, Any]], Any], timeout: float = 10.0, what: str = "state"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            details = self.details()
            found = find(details)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout}s: {details}")
            time.sleep(0.05)

    def entry(self, attendee_id: str) -> dict[str, Any] | None:
        return next(
            (a for a in self.details()["attendees"] if a["attendeeId"] == attendee_id), None
        )

    def decide(self, attendee_id: str, decision: str) -> None:
        """Settle a lobby request: ``allow`` or ``deny``."""
        self.call(
            "POST",
            f"{self.meeting}/attendees/meetingpermissions/{decision}",
            {"attendeeId": attendee_id},
        )

    def mute(self, attendee_id: str, audio: bool = False) -> None:
        self.call(
            "POST", f"{self.meeting}/attendees/phone/{attendee_id}/mediastate", {"audio": audio}
        )


@contextmanager
def phone_call(
    daemon: Daemon,
    phone: Phone,
    workdir: pathlib.Path,
    *,
    name: str = "call",
    service: str = "demo",
    version_header: str = "X-Phone: legacy",
    timeout: float = 30,
    local_port: int | None = None,
) -> Iterator[concurrent.futures.Future[subprocess.CompletedProcess[str]]]:
    """Run a built sipp scenario in the background while the test acts; asserts it passed."""
    path = phone.write(workdir / f"{name}.xml")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            sipp,
            daemon,
            str(path),
            workdir=workdir,
            service=service,
            version_header=version_header,
            timeout=timeout,
            local_port=local_port,
        )
        yield future
        result = future.result(timeout + 40)
        assert result.returncode == 0, explain(result, daemon, workdir)
