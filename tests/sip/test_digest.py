"""Digest authentication: the RFC's own vectors, challenges, expiry, replay, and bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.sip.digest import AuthFailure, DigestAuthenticator, parse_authorization, response_for


def test_rfc_2617_md5_vector() -> None:
    # RFC 2617 §3.5
    assert (
        response_for(
            username="Mufasa",
            password="Circle Of Life",
            realm="testrealm@host.com",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            method="GET",
            uri="/dir/index.html",
            nc="00000001",
            cnonce="0a4f113b",
            algorithm="MD5",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


def test_rfc_7616_sha256_vector() -> None:
    # RFC 7616 §3.9.1 (the algorithm RFC 8760 brings to SIP)
    assert (
        response_for(
            username="Mufasa",
            password="Circle of Life",
            realm="http-auth@example.org",
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            method="GET",
            uri="/dir/index.html",
            nc="00000001",
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            algorithm="SHA-256",
        )
        == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )


AUTH = DigestAuthenticator("bridge", {"1001": "s3cret"}, nonce_lifetime=60)


def forged(nonce: str) -> str:
    """The nonce with one character changed: its signature no longer matches."""
    return nonce[:5] + ("A" if nonce[5] != "A" else "B") + nonce[6:]


def nonce_of(challenge: str) -> str:
    return parse_authorization(challenge)["nonce"]


def credential(nonce: str, *, nc: str = "00000001", algorithm: str = "SHA-256", **over: str) -> str:
    fields = {
        "username": "1001",
        "password": "s3cret",
        "realm": "bridge",
        "nonce": nonce,
        "method": "INVITE",
        "uri": "sip:demo@127.0.0.1",
        "nc": nc,
        "cnonce": "abc",
        "algorithm": algorithm,
    } | over
    response = response_for(**fields)
    return (
        f'Digest username="{fields["username"]}", realm="bridge", nonce="{nonce}", '
        f'uri="sip:demo@127.0.0.1", response="{response}", algorithm={algorithm}, '
        f'qop=auth, nc={nc}, cnonce="abc"'
    )


def test_challenges_offer_sha256_then_md5() -> None:
    sha, md5 = AUTH.challenges(100.0)
    assert "algorithm=SHA-256" in sha and "algorithm=MD5" in md5 and 'qop="auth"' in sha
    assert nonce_of(sha) == nonce_of(md5)
    assert "stale=true" in AUTH.challenges(100.0, stale=True)[0]


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_right_credentials_pass_once_per_count(algorithm: str) -> None:
    nonce = nonce_of(AUTH.challenges(100.0)[0])
    assert AUTH.verify(credential(nonce, algorithm=algorithm), "INVITE", 101.0).username == "1001"
    with pytest.raises(AuthFailure) as replay:
        AUTH.verify(credential(nonce, algorithm=algorithm), "INVITE", 102.0)
    assert replay.value.forbidden
    second = credential(nonce, nc="00000002", algorithm=algorithm)
    assert AUTH.verify(second, "INVITE", 102.0).username == "1001"


@pytest.mark.parametrize(
    ("header", "now", "stale"),
    [
        (lambda n: credential(n, password="wrong"), 101.0, False),
        (lambda n: credential(n, username="9999"), 101.0, False),
        (credential, 161.0, True),  # expired: a fresh nonce, same password
        (lambda n: credential(forged(n)), 101.0, False),
        (lambda n: credential(n).replace("qop=auth, ", ""), 101.0, False),
        (lambda n: credential(n).replace('realm="bridge"', 'realm="other"'), 101.0, False),
        (lambda n: "Basic QWxhZGRpbjpvcGVu", 101.0, False),
    ],
    ids=["password", "user", "expired", "forged-nonce", "no-qop", "realm", "basic"],
)
def test_wrong_credentials_fail(header: object, now: float, stale: bool) -> None:
    nonce = nonce_of(AUTH.challenges(100.0)[0])
    with pytest.raises(AuthFailure) as failure:
        AUTH.verify(header(nonce), "INVITE", now)  # type: ignore[operator]
    assert failure.value.stale is stale


def test_method_is_part_of_the_response() -> None:
    nonce = nonce_of(AUTH.challenges(100.0)[0])
    with pytest.raises(AuthFailure):
        AUTH.verify(credential(nonce), "SUBSCRIBE", 101.0)


def test_replay_table_is_bounded() -> None:
    auth = DigestAuthenticator("bridge", {"1001": "s3cret"}, max_nonces=3)
    for i in range(10):
        nonce = nonce_of(auth.challenges(float(i))[0])
        auth.verify(credential(nonce), "INVITE", float(i))
    assert len(auth._counts) == 3


@given(st.text(max_size=300))
def test_any_header_is_an_auth_failure_never_a_crash(header: str) -> None:
    with pytest.raises(AuthFailure):
        AUTH.verify(header, "INVITE", 100.0)
