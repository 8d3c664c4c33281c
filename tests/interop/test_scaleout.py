"""Several bridge nodes behind Kamailio's dispatcher (docs/scale-out.md), all real processes on
127.0.0.0/8: the shipped ``deploy/kamailio/kamailio.cfg``, three ``spaces-bridge run`` nodes in
remote mode, one ``spaces-bridge server``, sipp and Python phones calling the proxy from 127.0.0.1.
"""

from __future__ import annotations

import concurrent.futures
import pathlib
import re
import shutil
import signal
import subprocess
import time
from contextlib import ExitStack
from typing import Any

import pytest

from tests.interop.harness import LOOPBACK, ROOT, Daemon, probe, sipp
from tests.interop.meeting import Moderator
from tests.interop.proxy import (
    CONFIG,
    INVITES_PER_SOURCE,
    NODE_ANSWER_MS,
    PROBE_SECONDS,
    Cluster,
    cluster,
    kamailio_binary,
)
from tests.interop.rtpphone import RtpSocket, SipPhone, Talker
from tests.interop.scenario import Phone
from tests.interop.test_mixer import A, B, C, first_loud, heard, hears, settle
from tests.interop.test_ops import get, sample

pytestmark = pytest.mark.interop

DROPPED = "spaces_bridge_sip_dropped_total"


def through(proxy_cluster: Cluster) -> Daemon:
    """What ``sipp()`` needs of its target: the proxy's address (phones call it, not a node)."""
    proxy = proxy_cluster.proxy
    return Daemon(proxy.workdir, port=proxy.port, host=proxy.host)


def run_calls(
    proxy_cluster: Cluster,
    workdir: pathlib.Path,
    calls: int,
    rate: float,
    name: str = "run",
    *,
    transport: str = "u1",
) -> subprocess.CompletedProcess[str]:
    folder = workdir / name
    folder.mkdir()
    return sipp(
        through(proxy_cluster),
        "call.xml",
        workdir=folder,
        transport=transport,
        calls=calls,
        rate=rate,
        local_host=LOOPBACK,
        timeout=90,
    )


def _stat(result: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    """Successful and failed calls of a sipp run, from its final statistics screen."""
    ok = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", result.stdout)
    failed = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", result.stdout)
    assert ok and failed, result.stdout[-3000:]
    return int(ok[1]), int(failed[1])


def phone_on(
    proxy_cluster: Cluster,
    node: int,
    *,
    media_port: int = 40000,
    name: str = "RTP Phone",
    contact_port: int | None = None,
) -> SipPhone:
    """A Python phone in an answered call that the proxy gave to node ``node`` (1-based): calls
    (each with a new Call-ID, so a new hash) until one lands there."""
    wanted = proxy_cluster.nodes[node - 1].host
    tries = 40
    for _ in range(tries):
        phone = SipPhone(
            (proxy_cluster.proxy.host, proxy_cluster.proxy.port),
            name=name,
            contact_port=contact_port,
        )
        answer = phone.invite(media_port)
        assert answer.status == 200, answer.first
        if f"{wanted}:" in (answer.header("contact") or ""):
            return phone
        phone.bye()
        phone.close()
    raise AssertionError(f"no call reached node {node} in {tries} tries")


def roster(url: str) -> list[dict[str, Any]]:
    return list(Moderator.at(url).details()["attendees"])


def test_the_shipped_configuration_passes_kamailios_check() -> None:
    for extra in ([], ["-A", "LEAST_CALLS"]):
        check = subprocess.run(
            [kamailio_binary(), "-c", "-f", str(CONFIG), *extra],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "config file ok" in check.stdout + check.stderr


def test_calls_spread_over_the_nodes_and_a_mute_reaches_the_phone_through_the_proxy(
    tmp_path: pathlib.Path,
) -> None:
    with cluster(tmp_path) as proxy_cluster:
        result = run_calls(proxy_cluster, tmp_path, calls=300, rate=50)
        assert result.returncode == 0, result.stdout[-3000:] + proxy_cluster.describe()
        assert _stat(result) == (300, 0)
        spread = proxy_cluster.calls_on()
        assert sum(spread) == 300 and all(count > 0 for count in spread), spread

        # The proxy is trusted: none of its INVITEs met the nodes' per-source bound (2 a second),
        # which any other source still meets.
        for node in proxy_cluster.nodes:
            dropped = sample(get(node.ops_url + "/metrics")[1], DROPPED, reason="invite_rate")
            assert dropped == 0, node.log()[-2000:]

        # Nodes take calls from the proxy only: a phone calling a node directly is refused, and
        # held to the per-source bound like anyone but the proxy.
        first = proxy_cluster.nodes[0]
        answers = [
            probe(first.host, first.port, "INVITE", "", 0.3, user="demo", local_host=LOOPBACK)
            for _ in range(INVITES_PER_SOURCE + 1)
        ]
        *refused, dropped_invite = answers
        assert all(a is not None and a.startswith(b"SIP/2.0 403 ") for a in refused), answers
        assert dropped_invite is None, answers
        assert sample(get(first.ops_url + "/metrics")[1], DROPPED, reason="invite_rate") >= 1

        # A moderator mutes a phone that sits on node 2: the node's re-INVITE follows the
        # dialog's route set, so it reaches the phone from the proxy, not from the node. The
        # phone is behind a NAT: its Contact names a port its packets do not come from, and the
        # proxy sends to where they do.
        with phone_on(proxy_cluster, 2, contact_port=9) as phone:
            (entry,) = [a for a in roster(proxy_cluster.server_url) if a["attendeeType"] == "phone"]
            Moderator.at(proxy_cluster.server_url).mute(str(entry["attendeeId"]))
            assert phone.wait_offers(1) == ["sendonly"]
            assert phone.sources[-1] == (proxy_cluster.proxy.host, proxy_cluster.proxy.port)
            phone.bye()


def test_the_least_calls_variant_spreads_calls_and_counts_them_down(tmp_path: pathlib.Path) -> None:
    """``-A LEAST_CALLS`` (dispatcher algorithm 10): calls spread over the nodes, and every call's
    load is removed again at its BYE: 120 calls pass through nodes that may hold 20 each."""
    with cluster(tmp_path, least_calls=True, maxload=20) as proxy_cluster:
        for run in ("first", "second"):
            result = run_calls(proxy_cluster, tmp_path, calls=60, rate=30, name=run)
            assert result.returncode == 0, result.stdout[-3000:] + proxy_cluster.describe()
            assert _stat(result) == (60, 0)
        spread = proxy_cluster.calls_on()
        assert sum(spread) == 120 and all(count > 0 for count in spread), spread
        assert "ERROR" not in proxy_cluster.proxy.log(), proxy_cluster.describe()


def test_phones_on_tcp_reach_the_nodes_over_udp(tmp_path: pathlib.Path) -> None:
    """A phone on TCP: the proxy record-routes twice (one entry per transport), talks UDP to the
    nodes, the phone's ACK and BYE find their node through both entries, and a node's re-INVITE
    finds the phone."""
    with cluster(tmp_path, count=2) as proxy_cluster:
        result = run_calls(proxy_cluster, tmp_path, calls=30, rate=20, transport="t1")
        assert result.returncode == 0, result.stdout[-3000:] + proxy_cluster.describe()
        assert _stat(result) == (30, 0)
        assert sum(proxy_cluster.calls_on()) == 30
        # The phones' BYEs reached the nodes (a node logs the end just after its 200 left).
        deadline = time.monotonic() + 5
        while sum(node.log().count("call ended") for node in proxy_cluster.nodes) < 30:
            assert time.monotonic() < deadline, proxy_cluster.describe()
            time.sleep(0.05)

        # A node's request toward a TCP phone goes down the phone's own connection to the proxy.
        scenario = Phone(name="TCP Phone").invite().expect_reinvite("sendonly").bye()
        path = scenario.write(tmp_path / "tcp-phone.xml")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(
                sipp,
                through(proxy_cluster),
                str(path),
                workdir=tmp_path,
                transport="t1",
                local_host=LOOPBACK,
                timeout=30,
            )
            url = proxy_cluster.server_url
            deadline = time.monotonic() + 10
            while not (phones := [a for a in roster(url) if a["displayName"] == "TCP Phone"]):
                assert time.monotonic() < deadline and not call.done(), proxy_cluster.describe()
                time.sleep(0.05)
            Moderator.at(url).mute(str(phones[0]["attendeeId"]))
            result = call.result(60)
        assert result.returncode == 0, result.stdout[-3000:] + proxy_cluster.describe()


def test_phones_on_two_nodes_hear_each_other_through_the_servers_mixer(
    tmp_path: pathlib.Path,
) -> None:
    """Each node relays its phone's audio to the conference server's Janus: phone A on node 1 and
    phone B on node 3 each hear the other's tone, and not their own."""
    with cluster(tmp_path, mixer=True) as proxy_cluster, ExitStack() as stack:
        talkers = []
        for node, (name, frequency) in ((1, ("Phone A", A)), (3, ("Phone B", B))):
            media = stack.enter_context(RtpSocket())
            phone = stack.enter_context(
                phone_on(proxy_cluster, node, media_port=media.port, name=name)
            )
            stack.enter_context(Talker(media, phone.bridge_media, frequency=frequency))
            talkers.append((name, media))
        (_, a), (_, b) = talkers
        joined = time.monotonic()
        first_loud(b, joined, A, 5, "B")
        first_loud(a, joined, B, 5, "A")
        since, until = settle(time.monotonic())
        hears(heard(a, since, until), [B], [A, C], "A")
        hears(heard(b, since, until), [A], [B, C], "B")


def test_a_draining_node_gets_no_new_calls_and_ends_its_own_with_bye(
    tmp_path: pathlib.Path,
) -> None:
    """SIGTERM node 1 while new calls arrive: none fails (the proxy sends them to the others, on
    the node's 503 and then its OPTIONS probe); node 1's held call gets BYE after the grace
    period, and node 1 exits 0."""
    with cluster(tmp_path, grace=3.0) as proxy_cluster:
        node = proxy_cluster.nodes[0]
        with phone_on(proxy_cluster, 1) as held, concurrent.futures.ThreadPoolExecutor(1) as pool:
            run = pool.submit(run_calls, proxy_cluster, tmp_path, 200, 40)
            time.sleep(1.5)
            before = proxy_cluster.calls_on()[0]
            node.signal(signal.SIGTERM)
            result = run.result(120)
            assert result.returncode == 0, result.stdout[-3000:] + proxy_cluster.describe()
            assert _stat(result) == (200, 0)
            # Calls still reached the node's SIP stack after the signal only to be refused.
            assert node.log().count("call offered") == before, proxy_cluster.describe()
            deadline = time.monotonic() + 15
            while not held.byes and time.monotonic() < deadline:
                time.sleep(0.05)
            assert held.byes == 1, proxy_cluster.describe()
            assert held.sources[-1] == (proxy_cluster.proxy.host, proxy_cluster.proxy.port)
        assert node.stop() == 0, node.log()


def test_a_killed_node_s_new_calls_fail_over_and_its_phones_leave_the_meeting(
    tmp_path: pathlib.Path,
) -> None:
    timeout = 3
    with cluster(tmp_path, server_extra=f"session_timeout_seconds = {timeout}") as proxy_cluster:
        node = proxy_cluster.nodes[1]
        held = phone_on(proxy_cluster, 2)
        try:
            assert len(roster(proxy_cluster.server_url)) == 1
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                run = pool.submit(run_calls, proxy_cluster, tmp_path, 150, 30, "during")
                time.sleep(1.5)
                assert node.process is not None
                node.process.send_signal(signal.SIGKILL)
                node.process.wait(10)
                node.stopping = True
                killed = time.monotonic()
                during = run.result(120)
            ok, failed = _stat(during)
            # Only calls that were up on node 2 when it died can fail (their BYE finds no one):
            # new INVITEs to it fail over after NODE_ANSWER_MS.
            assert ok + failed == 150 and failed <= 10, (ok, failed, during.stdout[-2000:])

            # Once the proxy's probe has marked the node down, no call fails or waits for it.
            time.sleep(
                max(0.0, killed + 2 * PROBE_SECONDS + NODE_ANSWER_MS / 1000 - time.monotonic())
            )
            after = run_calls(proxy_cluster, tmp_path, 100, 30, "after")
            assert _stat(after) == (100, 0), after.stdout[-3000:] + proxy_cluster.describe()

            # The server drops the dead node's phone once its session has been gone `timeout` s.
            deadline = killed + timeout + 5
            while any(a["attendeeType"] == "phone" for a in roster(proxy_cluster.server_url)):
                assert time.monotonic() < deadline, roster(proxy_cluster.server_url)
                time.sleep(0.1)
        finally:
            held.close()


def test_the_documented_set_up_runs_as_written(tmp_path: pathlib.Path) -> None:
    """docs/scale-out.md's commands, copied as they are, in a network namespace of their own (they
    use fixed ports: 8080, 5060 on 127.0.0.10-13): 300 calls succeed, spread over three nodes."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is missing")
    doc = (ROOT / "docs" / "scale-out.md").read_text()
    commands = re.findall(r"```sh\n(.*?)```", doc, re.DOTALL)[0]
    script = tmp_path / "cluster.sh"
    script.write_text(
        "set -e\nip link set lo up\n"
        # The documented folder, private to this run.
        + commands.replace("/tmp/spaces-cluster", str(tmp_path / "cluster"))
        # `kill %1 %2 ...` as the page says, in a script: every job it started.
        + "\nkill $(jobs -p)\nwait || true\n"
    )
    result = subprocess.run(
        [unshare, "--net", "bash", str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert _stat(result) == (300, 0), output[-4000:]
    spread = [int(n) for n in re.findall(r"^node\d\.log:(\d+)$", result.stdout, re.MULTILINE)]
    assert len(spread) == 3 and sum(spread) == 300 and min(spread) > 0, output[-4000:]
