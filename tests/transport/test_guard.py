"""The guard in front of the SIP stack: scanners dropped, each source held to its rate."""

from __future__ import annotations

import ipaddress

from bridge.transport.guard import SCANNERS, Guard

OPTIONS = (
    b"OPTIONS sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\n"
    b"From: <sip:100@192.0.2.9>;tag=1\r\nTo: <sip:100@192.0.2.1>\r\nCall-ID: 1\r\n"
    b"CSeq: 1 OPTIONS\r\n%s\r\nContent-Length: 0\r\n\r\n"
)


def test_known_scanners_are_dropped_whatever_the_case() -> None:
    guard = Guard(rate=0)
    for agent in (
        b"User-Agent: friendly-scanner",
        b"user-agent:SIPVicious 0.3",
        b"User-Agent: sipcli/v1.8",
    ):
        assert not guard.admit(OPTIONS % agent, "192.0.2.9", 0.0)
    assert guard.admit(OPTIONS % b"User-Agent: Yealink SIP-T46S", "192.0.2.9", 0.0)
    assert guard.scanners_dropped == 3


def test_a_source_is_held_to_its_rate_and_others_are_not() -> None:
    guard = Guard(rate=10, burst=5, scanners=())
    admitted = [guard.admit(b"x", "192.0.2.9", 0.0) for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    assert guard.admit(b"x", "192.0.2.10", 0.0)  # another source has its own bucket
    assert guard.admit(b"x", "192.0.2.9", 0.1)  # 0.1 s at 10/s: one token back
    assert not guard.admit(b"x", "192.0.2.9", 0.1)
    assert guard.rate_dropped == 4


def test_the_source_table_is_bounded() -> None:
    guard = Guard(rate=1, burst=1, scanners=(), max_sources=100)
    for i in range(1000):
        guard.admit(b"x", f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(guard._buckets) == 100


def test_reconfigure_changes_limits_and_scanners() -> None:
    guard = Guard(rate=1, burst=1)
    assert not guard.admit(OPTIONS % b"User-Agent: friendly-scanner", "192.0.2.9", 0.0)
    guard.reconfigure(rate=0, burst=1, scanners=())
    assert guard.admit(OPTIONS % b"User-Agent: friendly-scanner", "192.0.2.9", 0.0)
    assert all(guard.admit(b"x", "192.0.2.9", 0.0) for _ in range(10))  # no rate limit now


def test_new_invites_have_a_tighter_bucket_than_other_messages() -> None:
    guard = Guard(rate=1000, burst=1000, invite_rate=2, invite_burst=3, scanners=())
    invite = OPTIONS.replace(b"OPTIONS", b"INVITE") % b""
    assert [guard.admit(invite, "192.0.2.9", 0.0) for _ in range(5)] == [True] * 3 + [False] * 2
    assert guard.admit(OPTIONS % b"", "192.0.2.9", 0.0)  # the same source's other messages pass
    assert guard.admit(invite, "192.0.2.10", 0.0)  # another source has its own bucket
    assert guard.admit(invite, "192.0.2.9", 0.5)  # 0.5 s at 2/s: one token back
    assert (guard.invites_dropped, guard.rate_dropped) == (2, 0)


def test_trusted_proxies_have_no_per_source_buckets_but_scanners_are_still_dropped() -> None:
    """A proxy aggregates many phones: its messages and INVITEs pass at any rate, while another
    source on the same limits is held to them."""
    proxy = [ipaddress.ip_network("127.0.0.2/32"), ipaddress.ip_network("2001:db8::/64")]
    guard = Guard(rate=10, burst=5, invite_rate=1, invite_burst=1, scanners=SCANNERS, trusted=proxy)
    invite = b"INVITE sip:demo@127.0.0.1 SIP/2.0\r\n"
    assert all(guard.admit(invite, "127.0.0.2", 0.0) for _ in range(500))
    assert all(guard.admit(b"x", "2001:db8::5", 0.0) for _ in range(500))
    assert [guard.admit(invite, "127.0.0.3", 0.0) for _ in range(3)] == [True, False, False]
    assert not guard.admit(OPTIONS % b"User-Agent: friendly-scanner", "127.0.0.2", 0.0)
    assert guard.rate_dropped == 0 and guard.invites_dropped == 2 and guard.scanners_dropped == 1


def test_a_reload_that_drops_a_proxy_holds_it_to_the_limits_again() -> None:
    guard = Guard(rate=10, burst=5, scanners=(), trusted=[ipaddress.ip_network("127.0.0.2/32")])
    assert all(guard.admit(b"x", "127.0.0.2", 0.0) for _ in range(50))
    guard.reconfigure(rate=10, burst=5, scanners=())
    assert [guard.admit(b"x", "127.0.0.2", 0.0) for _ in range(6)] == [True] * 5 + [False]
