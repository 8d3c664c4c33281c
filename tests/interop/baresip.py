"""Drive a real baresip (Debian's 1.0) as a headless softphone through its ``ctrl_tcp`` module.

baresip runs in a private config directory with a sine-wave audio source (``ausine``), no sound
device (the ``aubridge`` player plays into nothing), G.711 and Opus, and no NAT helpers. The
``ctrl_tcp`` socket speaks netstring-framed JSON (``12:{"...": ...},``): we send
``{"command": "dial", "params": "sip:...", "token": "n"}`` and receive responses
``{"response": true, "ok": true, "data": "...", "token": "n"}`` interleaved with events
``{"event": true, "type": "CALL_ESTABLISHED", "id": "<SIP Call-ID>", "param": ...}``.

Commands are the long menu names without the slash (``dial``, ``hold``, ``resume``, ``hangup``,
``quit``). ``hold``/``resume`` only exist while a call is up: baresip 1.0 registers them with the
call, and answers "command not found" otherwise.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

from tests.interop.harness import LOOPBACK, Daemon, free_port, need

CONFIG = """\
poll_method\t\tepoll
net_interface		{host}
sip_listen\t\t{host}:{sip_port}
{tls_lines}
call_local_timeout\t30
call_max_calls\t\t4

# ausine only produces 48 kHz; aubridge is a player with no device behind it.
audio_player\t\taubridge,nowhere
audio_alert\t\taubridge,nowhere
audio_source\t\t{audio_source}
ausrc_srate\t\t48000
auplay_srate\t\t48000
ausrc_channels\t\t2
auplay_channels\t\t2
audio_level\t\tno
audio_buffer\t\t20-160
rtcp_mux\t\tno
jitter_buffer_delay\t5-10
rtp_stats\t\tno

module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
{opus_line}
module\t\t\taubridge.so
module\t\t\tausine.so
module_tmp\t\taccount.so
module_app\t\tcontact.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so

ctrl_tcp_listen\t\t{host}:{ctrl_port}
# the menu's one-line call status is redrawn many times a second; it would bury the log
statmode_default\toff
{extra}
"""

MODULES = pathlib.Path("/usr/lib/baresip/modules")
TRACE_BLOCK = re.compile(
    r"^(?:UDP|TCP|TLS) \S+ -> \S+\r?\n(.*?)(?=\x1b\[|\Z)", re.MULTILINE | re.DOTALL
)
"""One message in baresip's ``-s`` trace: a ``TRANSPORT src -> dst`` line, the message as sent or
received, then the colour reset that closes the block."""


class BaresipError(AssertionError):
    """baresip did not do what the test expected; the message carries its log and events."""


def sip_port_pair(host: str = LOOPBACK) -> int:
    """A port free for UDP and TCP whose successor is free for TCP: baresip 1.0 puts its TLS
    listener on ``sip_listen`` port + 1 and will not start if that is taken."""
    for _ in range(50):
        port = free_port(host)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind((host, port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair")


def wait_for(predicate: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    """Poll ``predicate`` until true or ``timeout``; on timeout fail with ``what()``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(what())
        time.sleep(0.05)


class Baresip:
    """One baresip process and its control connection. Use :func:`running_baresip`."""

    def __init__(
        self,
        workdir: pathlib.Path,
        *,
        host: str = LOOPBACK,
        cafile: pathlib.Path | None = None,
        name: str = "baresip",
        display: str = "Softphone",
        audio_source: str = "ausine,440",
        extra: str = "",
    ) -> None:
        """``name``: its folder under ``workdir`` (one per baresip of a test); ``display``: the
        account's display name (the attendee's name); ``audio_source``: what it sends, e.g.
        ``aufile,/path.wav`` (a 48 kHz stereo WAV, as ``ausrc_srate``/``ausrc_channels`` say; 1.0
        does not loop it and ends the call at its end); ``extra``: config lines added at the end
        (``module sndfile.so`` ...)."""
        self.dir = workdir / name
        self.host = host
        self.cafile = cafile
        self.display = display
        self.audio_source = audio_source
        self.extra = extra
        self.sip_port = sip_port_pair(host)
        self.ctrl_port = free_port(host)
        self.log_path = self.dir / "baresip.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.events: list[dict[str, Any]] = []
        """Every event received so far, in order (kept whole for failure messages)."""
        self._responses: list[dict[str, Any]] = []
        self._consumed = 0
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._tokens = 0

    # --- lifecycle ------------------------------------------------------------------------

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tls_lines = f"sip_cafile\t\t{self.cafile}" if self.cafile is not None else ""
        opus = "module\t\t\topus.so" if (MODULES / "opus.so").exists() else ""
        (self.dir / "config").write_text(
            CONFIG.format(
                host=self.host,
                sip_port=self.sip_port,
                ctrl_port=self.ctrl_port,
                tls_lines=tls_lines,
                opus_line=opus,
                audio_source=self.audio_source,
                extra=self.extra,
            )
        )
        # regint=0: no REGISTER; the display name becomes the attendee name in the bridge.
        (self.dir / "accounts").write_text(f'"{self.display}" <sip:phone@{self.host}>;regint=0\n')
        (self.dir / "contacts").write_text("")

    def start(self, timeout: float = 10.0) -> Baresip:
        self.write_config()
        with self.log_path.open("wb") as log:
            # -s: SIP trace into the log, so a failure shows what went over the wire
            self.process = subprocess.Popen(
                [need("baresip"), "-f", str(self.dir), "-s"],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while self._sock is None:
            if self.process.poll() is not None:
                raise BaresipError(f"baresip exited {self.process.returncode}:\n{self.log()}")
            try:
                self._sock = socket.create_connection((self.host, self.ctrl_port), timeout=0.2)
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(f"ctrl_tcp did not listen:\n{self.log()}") from None
                time.sleep(0.05)
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """``quit``, then SIGTERM twice (baresip's second SIGTERM skips waiting for open SIP
        transactions), then SIGKILL."""
        process = self.process
        if process is None:
            return
        if process.poll() is None and self._sock is not None:
            with contextlib.suppress(OSError, BaresipError):
                self._send("quit")
        for step in (process.terminate, process.terminate, process.kill):
            try:
                process.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                step()
        else:
            process.wait()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def invite_answers(self) -> list[str]:
        """The media direction of each 2xx to an INVITE that baresip received, in CSeq order
        (from the ``-s`` SIP trace; a missing attribute means sendrecv, RFC 4566 §6)."""
        directions: dict[int, str] = {}
        for block in TRACE_BLOCK.findall(self.log()):
            cseq = re.search(r"^CSeq:\s*(\d+)\s+INVITE\s*$", block, re.M | re.I)
            if not block.startswith("SIP/2.0 2") or cseq is None:
                continue
            found = re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", block, re.M)
            directions[int(cseq[1])] = found[-1] if found else "sendrecv"
        return [directions[cseq] for cseq in sorted(directions)]

    def explain(self) -> str:
        kinds = [f"{e.get('type')}({e.get('param', '')})" for e in self.events]
        return f"baresip events: {kinds}\n--- baresip log ---\n{self.log()[-6000:]}"

    # --- control protocol -----------------------------------------------------------------

    def command(self, name: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run one command and return its ``data``; raise if baresip says it failed."""
        token = self._send(name, params)
        deadline = time.monotonic() + timeout
        while True:
            for response in self._responses:
                if response.get("token") == token:
                    self._responses.remove(response)
                    if not response.get("ok"):
                        raise BaresipError(
                            f"{name} {params or ''} failed: {response}\n{self.explain()}"
                        )
                    return str(response.get("data", ""))
            self._pump(deadline, f"no response to {name}")

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def hold(self) -> None:
        self.command("hold")

    def resume(self) -> None:
        self.command("resume")

    def hangup(self) -> None:
        self.command("hangup")

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next event of type ``kind`` not returned before. Events are consumed in order, so
        waiting for CALL_CLOSED after CALL_ESTABLISHED never returns an older close."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._consumed, len(self.events)):
                if self.events[index].get("type") == kind:
                    self._consumed = index + 1
                    return self.events[index]
            self._pump(deadline, f"no {kind} event within {timeout}s")

    def _send(self, name: str, params: str | None = None) -> str:
        if self._sock is None:
            raise BaresipError("baresip is not running")
        self._tokens += 1
        token = str(self._tokens)
        message: dict[str, str] = {"command": name, "token": token}
        if params is not None:
            message["params"] = params
        payload = json.dumps(message).encode()
        self._sock.sendall(b"%d:%s," % (len(payload), payload))
        return token

    def _pump(self, deadline: float, failure: str) -> None:
        """Read what is available (waiting at most until ``deadline``) and sort it."""
        assert self._sock is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BaresipError(f"{failure}\n{self.explain()}")
        self._sock.settimeout(min(remaining, 0.2))
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return
        if not data:
            raise BaresipError(f"ctrl_tcp closed the connection ({failure})\n{self.explain()}")
        self._buffer += data
        while (message := self._next_netstring()) is not None:
            if message.get("event"):
                self.events.append(message)
            elif message.get("response"):
                self._responses.append(message)

    def _next_netstring(self) -> dict[str, Any] | None:
        head, colon, rest = self._buffer.partition(b":")
        if not colon:
            return None
        if not head.isdigit():
            raise BaresipError(f"bad netstring from ctrl_tcp: {self._buffer[:80]!r}")
        size = int(head)
        if len(rest) < size + 1:
            return None
        payload, self._buffer = rest[:size], rest[size + 1 :]
        return json.loads(payload)  # type: ignore[no-any-return]


def log_has(daemon: Daemon, *patterns: str) -> bool:
    return daemon.log_has(*patterns)


def wait_for_log(daemon: Daemon, phone: Baresip, *patterns: str, timeout: float = 5.0) -> None:
    """Wait until one line of the daemon log matches every regex in ``patterns``."""
    wait_for(
        lambda: log_has(daemon, *patterns),
        timeout,
        lambda: (
            f"daemon never logged a line matching {patterns}\n"
            f"--- daemon log ---\n{daemon.log()[-4000:]}\n{phone.explain()}"
        ),
    )


def call_key(call_id: str) -> str:
    """A regex for the ``call_id=`` field of one call in the daemon log."""
    return rf"\bcall_id={re.escape(call_id)}(\s|$)"


def establish(daemon: Daemon, phone: Baresip, uri: str) -> str:
    """Dial ``uri``, wait until both sides agree the call is up, and return its Call-ID."""
    phone.dial(uri)
    established = phone.wait_event("CALL_ESTABLISHED", timeout=10)
    call_id = str(established["id"])  # ctrl_tcp's call id is the SIP Call-ID
    key = call_key(call_id)
    attendee = rf"\battendee={re.escape(phone.display)}(\s|$)"
    wait_for_log(daemon, phone, r"\bcall offered\b", key, attendee)
    wait_for_log(daemon, phone, r"\bcall confirmed\b", key)
    return call_id


@contextlib.contextmanager
def running_baresip(
    workdir: pathlib.Path, *, cafile: pathlib.Path | None = None, **options: str
) -> Iterator[Baresip]:
    """A started :class:`Baresip`; ``options``: its ``name``, ``display``, ``audio_source``,
    ``extra``."""
    phone = Baresip(workdir, cafile=cafile, **options).start()
    try:
        yield phone
    finally:
        phone.stop()
