"""Kamailio running the shipped ``deploy/kamailio/kamailio.cfg`` in front of bridge nodes, and the
small cluster the scale-out tests build: one conference server, N nodes, one proxy, each on its own
127.0.0.0/8 address (docs/scale-out.md describes the same set-up by hand)."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.interop.harness import LOOPBACK, ROOT, Daemon, free_port, probe
from tests.interop.remote import TOKEN_ENV, conference_server, remote_config

CONFIG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
PROXY_HOST = "127.0.0.10"
"""The proxy's address; the nodes are 127.0.0.11, .12, ... and phones call from 127.0.0.1."""
PROBE_SECONDS = 1
"""The proxy's OPTIONS interval here (5 s in the shipped file)."""
NODE_ANSWER_MS = 1000
"""How long the proxy waits for a node's first answer here (2 s in the shipped file)."""


def kamailio_binary() -> str:
    found = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail("kamailio is not installed: `make test` installs it (scripts/install-peers.sh)")
    return found


@dataclass
class Kamailio:
    """``kamailio -f deploy/kamailio/kamailio.cfg`` with the nodes of ``nodes`` in its dispatcher
    list, in the foreground, logging to ``workdir/kamailio.log``."""

    workdir: pathlib.Path
    nodes: list[tuple[str, int]]
    host: str = PROXY_HOST
    port: int = field(default_factory=lambda: free_port(PROXY_HOST))
    least_calls: bool = False
    """Run the least-calls variant of the configuration (``-A LEAST_CALLS``)."""
    maxload: int = 350
    """Calls a node may hold in that variant (``maxload=`` in dispatcher.list)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> pathlib.Path:
        return self.workdir / "kamailio.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Kamailio:
        dispatcher = self.workdir / "dispatcher.list"
        dispatcher.write_text(
            "".join(
                f"1 sip:{host}:{port} 0 0 duid=node{n};maxload={self.maxload}\n"
                for n, (host, port) in enumerate(self.nodes, 1)
            )
        )
        runtime = self.workdir / "kamailio-run"
        runtime.mkdir(exist_ok=True)
        defines = {
            "PROXY_ADDRESS": self.host,
            "PROXY_PORT": str(self.port),
            "DISPATCHER_LIST": f'"{dispatcher}"',
            "PROBE_SECONDS": str(PROBE_SECONDS),
            "NODE_ANSWER_MS": str(NODE_ANSWER_MS),
            "CHILDREN": "2",
        }
        command = [kamailio_binary(), "-f", str(CONFIG), "-DD", "-E", "-m", "64", "-M", "8"]
        command += ["-w", str(runtime), "-Y", str(runtime)]
        for name, value in defines.items():
            command += ["-A", f"{name}={value}"]
        if self.least_calls:
            command += ["-A", "LEAST_CALLS"]
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        # An OPTIONS for a user goes through the proxy to a node and back: the path works.
        while probe(self.host, self.port, "OPTIONS", "", 0.2) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"kamailio did not start:\n{self.log()[-3000:]}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Cluster:
    proxy: Kamailio
    nodes: list[Daemon]
    server_url: str

    def calls_on(self) -> list[int]:
        """How many calls each node was offered so far."""
        return [node.log().count("call offered") for node in self.nodes]

    def describe(self) -> str:
        parts = [f"--- kamailio ---\n{self.proxy.log()[-3000:]}"]
        parts += [f"--- node {n} ---\n{d.log()[-2000:]}" for n, d in enumerate(self.nodes, 1)]
        return "\n".join(parts)


INVITES_PER_SOURCE = 2
"""The nodes' per-source INVITE bound here (50/s by default): far below what the proxy sends, so
that only its being trusted lets the calls through, while any other source is held to it."""


def node_config(url: str, proxy: str) -> str:
    """A node's tables beyond the harness's: the shared server, and the proxy as its only caller
    (docs/scale-out.md, "Nodes")."""
    return (
        remote_config(url)
        + f'\n[limits]\ntrusted_proxies = ["{proxy}"]\n'
        + f"invites_per_source = {INVITES_PER_SOURCE}\n"
        + f"invite_burst_per_source = {INVITES_PER_SOURCE}\n"
        + f'\n[auth]\nallow = ["{proxy}/32"]\n'
    )


@contextlib.contextmanager
def cluster(
    workdir: pathlib.Path,
    *,
    count: int = 3,
    grace: float = 0.0,
    server_extra: str = "",
    mixer: bool = False,
    least_calls: bool = False,
    maxload: int = 350,
) -> Iterator[Cluster]:
    """A conference server, ``count`` nodes against it, and Kamailio in front of them. Nodes a
    test has killed are left as they are; the others must exit 0. ``mixer``: the server runs its
    Janus (off by default: tests of many short calls need no audio mixed)."""
    server_port = free_port(LOOPBACK)
    tables = "" if mixer else "\n[media_server]\nenabled = false\n"
    with conference_server(workdir, server_port, extra=server_extra, tables=tables):
        url = f"http://{LOOPBACK}:{server_port}"
        nodes: list[Daemon] = []
        proxy: Kamailio | None = None
        try:
            for n in range(1, count + 1):
                host = f"127.0.0.{10 + n}"
                folder = workdir / f"node{n}"
                folder.mkdir()
                node = Daemon(
                    folder,
                    port=free_port(host),
                    host=host,
                    grace=grace,
                    extra_config=node_config(url, PROXY_HOST),
                    env=TOKEN_ENV,
                )
                nodes.append(node.start())
            nodes_at = [(node.host, node.port) for node in nodes]
            proxy = Kamailio(workdir, nodes_at, least_calls=least_calls, maxload=maxload).start()
            yield Cluster(proxy, nodes, url)
        finally:
            if proxy is not None:
                proxy.stop()
            codes = [node.stop() for node in nodes if not node.stopping]
            assert all(code == 0 for code in codes), codes
