"""Relay latency under load: how long the daemon takes to pass a mute on, in both directions,
while sipp places basic calls at half the maximum call rate.

- phone to conference: a phone sends a re-INVITE (``a=recvonly`` mutes, ``a=sendrecv`` unmutes)
  or the DTMF keys ``*6`` in two INFOs (timed from the INFO with the last key);
- conference to phone: the moderator mutes and unmutes the phone through the REST API; timed
  until the daemon's re-INVITE reaches the phone.

The phones are raw UDP sockets in this script; every timestamp is CLOCK_MONOTONIC in this one
process. Two modes:

- ``--mode embedded`` (default; the configuration bench/callrate.py measured the max rate in):
  the daemon runs the conference server in-process, so the conference request never leaves it.
  Phone to conference is timed until a moderator's Socket.IO client here receives the server's
  ``app.event.attendee.updated``; conference to phone from the moderator's REST request leaving
  here. Both include the embedded server's work and a loopback hop: upper bounds.
- ``--mode remote``: the conference server runs as its own process (``spaces-bridge server``) and
  the daemon reaches it through a reverse proxy in this script that timestamps each REST request
  (phone to conference ends when ``POST .../mediastate`` reaches the proxy) and each Socket.IO
  frame (conference to phone starts when ``request.tracksstatus.change`` reaches the proxy). On a
  two-core machine the server, the proxy and sipp share core 1.

The daemon's own histograms (``spaces_bridge_mute_relay_*_seconds``, as bucket bounds) are printed
alongside. The script pins itself to core 1 and raises its priority when it may (root).

Run: .venv/bin/python bench/relay.py [--mode embedded|remote] [--load N] [--samples 100]
(``--load`` defaults to half the highest rate bench/callrate.py last measured, else 250 calls/s.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import pathlib
import re
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import _daemon
import aiohttp
import socketio  # type: ignore[import-untyped]  # python-socketio ships no type information
from _daemon import HOST, MODERATOR_TOKEN, Target, machine, percentile, sipp_args, table
from aiohttp import web

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
    "content-encoding",
}
TO_CONFERENCE = "spaces_bridge_mute_relay_phone_to_conference_seconds"
TO_PHONE = "spaces_bridge_mute_relay_conference_to_phone_seconds"


@dataclass
class Watch:
    """What the proxy and the phones saw, each with the time it was seen."""

    waiters: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    gc_log: pathlib.Path | None = None
    """Where the daemon writes its collector pauses when it exits."""
    window: tuple[float, float] = (0.0, 0.0)
    """When the measurement ran (time.monotonic())."""

    def expect(self, key: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[key] = future
        return future

    def seen(self, key: str, at: float) -> None:
        future = self.waiters.pop(key, None)
        if future is not None and not future.done():
            future.set_result(at)


# -- the timestamping front of the conference server ------------------------------------------------
def proxy_app(upstream: str, watch: Watch, session: aiohttp.ClientSession) -> web.Application:
    async def forward(request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await _websocket(request, upstream, headers, watch, session)
        if request.method == "POST" and request.path.endswith("/mediastate"):
            # .../attendees/<type>/<attendeeId>/mediastate
            watch.seen(f"conference:{request.path.rsplit('/', 2)[-2]}", arrived)
        body = await request.read()
        async with session.request(
            request.method, upstream + request.path_qs, headers=headers, data=body
        ) as answer:
            data = await answer.read()
            back = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=answer.status, body=data, headers=back)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def _websocket(
    request: web.Request,
    upstream: str,
    headers: dict[str, str],
    watch: Watch,
    session: aiohttp.ClientSession,
) -> web.WebSocketResponse:
    down = web.WebSocketResponse()
    await down.prepare(request)
    headers = {k: v for k, v in headers.items() if not k.lower().startswith("sec-websocket")}
    async with session.ws_connect(upstream + request.path_qs, headers=headers) as up:

        async def to_daemon() -> None:
            async for message in up:
                at = time.monotonic()
                if message.type is aiohttp.WSMsgType.TEXT:
                    if "request.tracksstatus.change" in message.data:
                        for attendee in re.findall(r'"attendeeId":\s*"([^"]+)"', message.data):
                            watch.seen(f"event:{attendee}", at)
                    await down.send_str(message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    await down.send_bytes(message.data)
            await down.close()

        async def to_server() -> None:
            async for message in down:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await up.send_str(message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    await up.send_bytes(message.data)
            await up.close()

        async with asyncio.TaskGroup() as group:
            group.create_task(to_daemon())
            group.create_task(to_server())
    return down


# -- phones ----------------------------------------------------------------------------------------
SDP = (
    "v=0\r\no=phone 1 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
)
ANSWER = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


def parse(data: bytes) -> tuple[str, dict[str, str], list[str], str]:
    """First line, headers (lower-case names, first value), Via values, body."""
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    first, *lines = head.split("\r\n")
    headers: dict[str, str] = {}
    vias = []
    for line in lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name in ("via", "v"):
            vias.append(value.strip())
        headers.setdefault(name, value.strip())
    return first, headers, vias, body


class Phone(asyncio.DatagramProtocol):
    """A legacy phone (no spacesVersion) with one call to ``demo``: raw SIP over UDP."""

    def __init__(self, number: int, server: tuple[str, int], watch: Watch) -> None:
        self.name = f"relay-phone-{number}"
        self.server = server
        self.watch = watch
        self.call_id = f"relay-{number}-{os.getpid()}-{time.monotonic_ns()}"
        self.tag = f"t{number}"
        self.cseq = 0
        self.version = 1
        self.port = 0
        self.remote_tag = ""
        self.target = f"sip:demo@{HOST}:{server[1]}"
        self.answers: dict[str, asyncio.Future[tuple[str, dict[str, str]]]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.branches = itertools.count()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        at = time.monotonic()
        first, headers, vias, body = parse(data)
        if first.startswith("SIP/2.0 "):
            code = first.split()[1]
            if code.startswith("1"):
                return
            branch = re.search(r"branch=([^;\s]+)", vias[0] if vias else "")
            future = self.answers.pop(branch[1] if branch else "", None)
            if future is not None and not future.done():
                future.set_result((code, headers))
            return
        method = first.split()[0]
        if method == "ACK":
            return
        if method == "INVITE":
            self.watch.seen(f"phone:{self.call_id}", at)
            offered = re.search(r"a=(sendonly|recvonly|inactive|sendrecv)", body)
            direction = ANSWER.get(offered[1] if offered else "sendrecv", "sendrecv")
            self.respond(headers, vias, self.sdp(direction))
        else:
            self.respond(headers, vias, "")

    def respond(self, headers: dict[str, str], vias: list[str], sdp: str) -> None:
        assert self.transport is not None
        lines = [
            "SIP/2.0 200 OK",
            *(f"Via: {via}" for via in vias),
            f"From: {headers['from']}",
            f"To: {headers['to']}",
            f"Call-ID: {headers['call-id']}",
            f"CSeq: {headers['cseq']}",
            f"Contact: <sip:{self.name}@{HOST}:{self.port}>",
        ]
        if sdp:
            lines.append("Content-Type: application/sdp")
        self.transport.sendto(
            ("\r\n".join([*lines, f"Content-Length: {len(sdp)}", "", sdp])).encode(), self.server
        )

    def sdp(self, direction: str) -> str:
        self.version += 1
        return SDP.format(version=self.version, host=HOST, port=40000, direction=direction)

    def request(
        self, method: str, body: str = "", content_type: str = "", cseq: int | None = None
    ) -> asyncio.Future[tuple[str, dict[str, str]]]:
        """Send an in-dialog (or the initial) request; the future resolves with its final answer."""
        assert self.transport is not None
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        branch = f"z9hG4bK{self.tag}x{next(self.branches)}"
        to = f"<sip:demo@{HOST}:{self.server[1]}>" + (
            f";tag={self.remote_tag}" if self.remote_tag else ""
        )
        lines = [
            f"{method} {self.target} SIP/2.0",
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport",
            f'From: "{self.name}" <sip:{self.name}@{HOST}:{self.port}>;tag={self.tag}',
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.name}@{HOST}:{self.port}>",
            "Max-Forwards: 70",
        ]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        future: asyncio.Future[tuple[str, dict[str, str]]] = (
            asyncio.get_running_loop().create_future()
        )
        if method != "ACK":
            self.answers[branch] = future
        self.transport.sendto(
            ("\r\n".join([*lines, f"Content-Length: {len(body)}", "", body])).encode(), self.server
        )
        return future

    async def invite(self, direction: str) -> str:
        """Send an INVITE (the first, or a re-INVITE) and ACK its 200; the final status code."""
        code, headers = await asyncio.wait_for(
            self.request("INVITE", self.sdp(direction), "application/sdp"), 10
        )
        if code != "200":
            return code  # 491 when the daemon's own re-INVITE crossed ours: the sample is lost
        if not self.remote_tag:
            self.remote_tag = re.search(r"tag=([^;\s>]+)", headers["to"])[1]  # type: ignore[index]
            contact = re.search(r"<([^>]+)>", headers.get("contact", ""))
            if contact:
                self.target = contact[1]
        self.request("ACK", cseq=self.cseq)
        return code

    async def key(self, digit: str) -> None:
        body = f"Signal={digit}\r\nDuration=160\r\n"
        code, _ = await asyncio.wait_for(self.request("INFO", body, "application/dtmf-relay"), 10)
        if code != "200":
            raise RuntimeError(f"{self.name}: INFO answered {code}")


# -- the measurement -------------------------------------------------------------------------------
class Moderator:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.headers = {"Authorization": f"Bearer {MODERATOR_TOKEN}", "accept-version": "1.1"}

    async def call(self, method: str, path: str, body: object = None) -> object:
        async with self.session.request(
            method, self.base + path, json=body, headers=self.headers
        ) as answer:
            answer.raise_for_status()
            return await answer.json() if answer.content_length != 0 else None

    async def roster(self) -> tuple[str, dict[str, str]]:
        meeting = await self.call("GET", "/api/spaces/demo/activemeeting")
        assert isinstance(meeting, dict)
        path = f"/api/spaces/demo/meetings/{meeting['meetingId']}"
        details = await self.call("GET", path)
        assert isinstance(details, dict)
        return path, {a["displayName"]: a["attendeeId"] for a in details["attendees"]}


async def measure(
    phones: list[Phone], moderator: Moderator, watch: Watch, samples: int, deadline: float
) -> dict[str, list[float]]:
    """Up to ``samples`` rounds, each two of every kind, until ``deadline`` (the load's end)."""
    meeting, roster = await moderator.roster()
    ids = {phone.name: roster[phone.name] for phone in phones}
    found: dict[str, list[float]] = {"reinvite": [], "dtmf": [], "event": []}
    missed: dict[str, int] = dict.fromkeys(found, 0)

    for round_ in range(samples):
        if time.monotonic() > deadline:
            break
        phone = phones[round_ % len(phones)]
        attendee = ids[phone.name]
        for direction in ("recvonly", "sendrecv"):  # mute, then unmute
            seen = watch.expect(f"conference:{attendee}")
            sent = time.monotonic()
            if await phone.invite(direction) != "200":
                missed["reinvite"] += 1
                watch.waiters.clear()
                continue
            await _record(found["reinvite"], missed, "reinvite", seen, sent)
            await asyncio.sleep(0.05)
        for _ in range(2):  # *6 mutes, *6 again unmutes
            await phone.key("*")
            seen = watch.expect(f"conference:{attendee}")
            sent = time.monotonic()
            await phone.key("6")
            await _record(found["dtmf"], missed, "dtmf", seen, sent)
            await asyncio.sleep(0.05)  # a completed "*6" clears the key buffer: no gap needed
        for audio in (False, True):
            # Remote mode: from the event reaching the proxy. Embedded: from the REST request.
            event = watch.expect(f"event:{attendee}")
            invite = watch.expect(f"phone:{phone.call_id}")
            posted = time.monotonic()
            await moderator.call(
                "POST", f"{meeting}/attendees/phone/{attendee}/mediastate", {"audio": audio}
            )
            try:
                reached = await asyncio.wait_for(invite, 2)
                arrived = event.result() if event.done() else posted
                found["event"].append(reached - arrived)
            except TimeoutError:
                missed["event"] += 1
            watch.waiters.pop(f"event:{attendee}", None)
            await asyncio.sleep(0.05)  # let the re-INVITE's ACK go before the next offer
    for kind, count in missed.items():
        if count:
            print(f"  {kind}: {count} samples had no matching message within 2 s")
    return found


async def _record(
    into: list[float],
    missed: dict[str, int],
    kind: str,
    seen: asyncio.Future[float],
    sent: float,
) -> None:
    try:
        into.append(await asyncio.wait_for(seen, 2) - sent)
    except TimeoutError:
        missed[kind] += 1


def histogram_quantile(text_before: str, text_after: str, name: str, q: float) -> str:
    """The bucket bound under which fraction ``q`` of the observations made between two scrapes
    fall (Prometheus buckets give bounds, not values)."""

    def buckets(text: str) -> dict[float, float]:
        return {
            float(m[1]): float(m[2])
            for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M)
        }

    before, after = buckets(text_before), buckets(text_after)
    deltas = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = deltas[-1][1] if deltas else 0
    if not total:
        return "no samples"
    for le, count in deltas:
        if count >= q * total:
            return f"<= {le * 1000:g} ms" if le != float("inf") else "> 5 s"
    return "?"


@contextlib.asynccontextmanager
async def front(upstream: str, watch: Watch) -> AsyncIterator[str]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        runner = web.AppRunner(proxy_app(upstream, watch, session), access_log=None)
        await runner.setup()
        port = _daemon.free_port()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        try:
            yield f"http://{HOST}:{port}"
        finally:
            await runner.cleanup()


async def watch_roster(base: str, watch: Watch) -> socketio.AsyncClient:
    """A moderator's console: ``app.event.attendee.updated`` marks ``conference:<attendee>``."""
    client = socketio.AsyncClient(reconnection=False)

    async def on_response(message: dict[str, object]) -> None:
        content = message.get("content")
        if message.get("category") == "app.event.attendee.updated" and isinstance(content, dict):
            watch.seen(f"conference:{content.get('attendeeId')}", time.monotonic())

    client.on("MEDIA_SESSION_RESPONSE", on_response, namespace="/chat")
    await client.connect(
        base, auth={"token": MODERATOR_TOKEN}, namespaces=["/chat"], transports=["websocket"]
    )
    await client.call(
        "SUBSCRIBE_CHANNEL", {"channel": {"type": "topic", "_id": "demo"}}, namespace="/chat"
    )
    return client


async def run(args: argparse.Namespace, work: pathlib.Path) -> list[list[str]]:
    gc_log = work / "gc.json"
    watch = Watch(gc_log=gc_log)
    if args.mode == "embedded":
        port = _daemon.free_port()
        base = f"http://{HOST}:{port}"
        with _daemon.daemon(work, server_port=port, gc_pauses_to=watch.gc_log) as target:
            async with aiohttp.ClientSession() as session:
                console = await watch_roster(base, watch)
                try:
                    rows = await _run(args, work, target, watch, Moderator(session, base))
                finally:
                    await console.disconnect()
    else:
        with _daemon.conference_server(work) as (upstream, server_pid):
            async with front(upstream, watch) as proxy, aiohttp.ClientSession() as session:
                with _daemon.daemon(
                    work, conference_url=proxy, gc_pauses_to=watch.gc_log
                ) as target:
                    target.extra_pids.append(server_pid)
                    rows = await _run(args, work, target, watch, Moderator(session, upstream))
    # Written when the daemon exited: the cyclic collector's pauses during the measurement.
    print("  daemon's " + _daemon.gc_pauses(gc_log, *watch.window))
    return rows


async def _run(
    args: argparse.Namespace, work: pathlib.Path, target: Target, watch: Watch, mod: Moderator
) -> list[list[str]]:
    loop = asyncio.get_running_loop()
    phones = []
    for number in range(args.phones):
        _, phone = await loop.create_datagram_endpoint(
            functools.partial(Phone, number, (HOST, target.port), watch), local_addr=(HOST, 0)
        )
        if await phone.invite("sendrecv") != "200":
            raise SystemExit(f"{phone.name} could not join the meeting")
        phones.append(phone)
    await asyncio.sleep(0.5)
    before = await asyncio.to_thread(target.metrics)
    seconds = 20
    load = subprocess.Popen(
        sipp_args(target.port, rate=args.load, calls=args.load * seconds, timeout=seconds + 5),
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(1)
        started = time.monotonic()
        who = {
            "daemon (core 0)": [target.pid],
            "conference server": target.extra_pids,
            "this script (phones, front)": [os.getpid()],
            "sipp": [load.pid],
        }
        cpu = {name: _daemon.cpu_seconds(pids) for name, pids in who.items()}
        ticks = _daemon.cpu_ticks()
        found = await measure(phones, mod, watch, args.samples, started + seconds - 2)
        took = time.monotonic() - started
        watch.window = (started, started + took)
        if load.poll() is not None:
            print("  WARNING: the sipp load ended before the measurement did")
        print(f"  measured in {took:.1f} s under load; CPU used meanwhile, in cores:", flush=True)
        for name, pids in who.items():
            print(f"    {name:<28} {(_daemon.cpu_seconds(pids) - cpu[name]) / took:.2f}")
        print(f"    (hypervisor steal: {_daemon.steal_since(ticks):.0f} % of the machine's time)")
    finally:
        await asyncio.to_thread(load.wait, seconds + 20)
    after = await asyncio.to_thread(target.metrics)
    stats = _daemon.sipp_stats(work)
    print(
        f"  load: {stats.get('SuccessfulCall(C)', '?')} calls ok, "
        f"{stats.get('FailedCall(C)', '?')} failed, "
        f"{stats.get('Retransmissions(C)', '?')} retransmissions"
    )
    rows = []
    labels = {
        "reinvite": ("phone -> conference", "re-INVITE a=recvonly/sendrecv", TO_CONFERENCE),
        "dtmf": ("phone -> conference", "INFO dtmf-relay *6", TO_CONFERENCE),
        "event": ("conference -> phone", "admin mute -> re-INVITE", TO_PHONE),
    }
    for kind, samples in found.items():
        direction, what, metric = labels[kind]
        if not samples:
            rows.append([direction, what, "0", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                direction,
                what,
                str(len(samples)),
                f"{percentile(samples, 50) * 1000:.2f} ms",
                f"{percentile(samples, 99) * 1000:.2f} ms",
                f"{max(samples) * 1000:.2f} ms",
                str(sum(1 for sample in samples if sample > 0.005)),
            ]
        )
    for metric, direction in ((TO_CONFERENCE, "phone -> conference"), (TO_PHONE, "conf -> phone")):
        rows.append(
            [
                direction,
                "daemon's own histogram",
                "",
                histogram_quantile(before, after, metric, 0.5),
                histogram_quantile(before, after, metric, 0.99),
                "",
                "",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("embedded", "remote"), default="embedded")
    parser.add_argument("--load", type=int, help="background calls per second (sipp uac)")
    parser.add_argument("--phones", type=int, default=10, help="phones whose mutes are timed")
    parser.add_argument(
        "--samples", type=int, default=100, help="rounds at most (each: 2 of each kind)"
    )
    args = parser.parse_args()
    if args.load is None:
        saved = _daemon.RESULTS / "callrate.json"
        best = json.loads(saved.read_text())["max_rate"] if saved.exists() else 0
        args.load = best // 2 if best else 250
        print(f"load: {args.load} calls/s ({'half of ' + str(best) if best else 'default'})")
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(_daemon.CLIENT_CORE)})
        os.nice(-10)  # the timestamps are ours: do not let sipp delay them (root only)
    _daemon.quiet_machine()
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as name:
        rows = asyncio.run(run(args, pathlib.Path(name)))
    print()
    print(table(["direction", "trigger", "samples", "p50", "p99", "max", "> 5 ms"], rows))
    where = "in its own process" if args.mode == "remote" else "embedded in the daemon"
    print(
        f"\n{args.mode} mode: under {args.load} basic calls/s from sipp; conference server {where}"
    )


if __name__ == "__main__":
    main()
