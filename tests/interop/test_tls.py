"""SIP over TLS (RFC 3261 §26.3.1, RFC 5630) against the real daemon, with a throwaway certificate.

Debian's sipp is built without OpenSSL ("To use a TLS transport you must compile SIPp with
OpenSSL"), so the call is made by baresip; the sipp test runs only where sipp has TLS. baresip 1.0
(libre 1.1) does not verify the server certificate even when given ``sip_cafile``, so certificate
verification is proved by Python's ssl client in ``test_options_over_verified_tls``.
"""

from __future__ import annotations

import pathlib
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.interop.baresip import call_key, establish, running_baresip, wait_for_log
from tests.interop.harness import (
    LOOPBACK,
    Daemon,
    explain,
    free_port,
    need,
    options_ping,
    running_daemon,
    sipp,
)

pytestmark = pytest.mark.interop


def make_certificate(directory: pathlib.Path) -> pathlib.Path:
    """A self-signed certificate for 127.0.0.1 in ``directory``/cert.pem (key in key.pem), where
    :class:`Daemon` looks for them. Returns the certificate path."""
    subprocess.run(
        [
            need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
            "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return directory / "cert.pem"


@pytest.fixture
def daemon(tmp_path: pathlib.Path) -> Iterator[Daemon]:
    make_certificate(tmp_path)
    with running_daemon(tmp_path, tls_port=free_port()) as d:
        yield d


def tls_options(daemon: Daemon, timeout: float = 5.0) -> bytes:
    """One OPTIONS over a verified TLS connection to the daemon's TLS port; the response head."""
    assert daemon.tls_port is not None
    context = ssl.create_default_context(cafile=str(daemon.workdir / "cert.pem"))
    with (
        socket.create_connection((daemon.host, daemon.tls_port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=daemon.host) as sock,
    ):
        local_port = sock.getsockname()[1]
        sock.sendall(
            (
                f"OPTIONS sip:ping@{daemon.host}:{daemon.tls_port};transport=tls SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS {daemon.host}:{local_port};branch=z9hG4bKtls{time.monotonic_ns()}\r\n"
                f"From: <sips:probe@{daemon.host}>;tag=probe\r\nTo: <sips:ping@{daemon.host}>\r\n"
                f"Call-ID: tls-{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
        )
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65535)
            if not chunk:
                break
            received += chunk
        return received


def test_options_over_verified_tls(daemon: Daemon) -> None:
    """The daemon serves the configured certificate (the handshake verifies against it) and
    answers SIP inside the tunnel."""
    response = tls_options(daemon)
    assert response.startswith(b"SIP/2.0 200"), response


def test_baresip_call_over_tls(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    assert daemon.tls_port is not None
    with running_baresip(tmp_path, cafile=daemon.workdir / "cert.pem") as phone:
        uri = f"sip:demo@{LOOPBACK}:{daemon.tls_port};transport=tls"
        call_id = establish(daemon, phone, uri)
        # the INVITE really went out over TLS (baresip's SIP trace names the transport)
        assert re.search(rf"TLS \S+ -> {LOOPBACK}:{daemon.tls_port}\r?\nINVITE ", phone.log())

        phone.hold()
        wait_for_log(daemon, phone, r"\bhold\b", call_key(call_id))

        phone.hangup()
        assert phone.wait_event("CALL_CLOSED")["id"] == call_id
        wait_for_log(daemon, phone, r"\bcall ended\b", call_key(call_id))


def sipp_has_tls() -> bool:
    banner = subprocess.run([need("sipp"), "-v"], capture_output=True, text=True, check=False)
    return "TLS" in banner.stdout + banner.stderr


def test_sipp_call_over_tls(daemon: Daemon, tmp_path: pathlib.Path) -> None:
    if not sipp_has_tls():
        pytest.skip("this sipp is built without TLS (sipp -v shows no -TLS-); baresip covers TLS")
    assert daemon.tls_port is not None
    certs = ("-tls_cert", str(tmp_path / "cert.pem"), "-tls_key", str(tmp_path / "key.pem"))
    result = sipp(
        daemon,
        "call.xml",
        workdir=tmp_path,
        transport="l1",
        target_port=daemon.tls_port,
        extra=certs,
    )
    assert result.returncode == 0, explain(result, daemon, tmp_path)
    assert "call ended" in daemon.log()


def test_plain_tcp_to_the_tls_port_gets_no_sip(daemon: Daemon) -> None:
    """Cleartext SIP sent to the TLS port fails the handshake: the connection is closed without a
    SIP answer, and the daemon keeps serving UDP and TLS."""
    assert daemon.tls_port is not None
    received = b""
    with socket.create_connection((daemon.host, daemon.tls_port), timeout=5) as sock:
        sock.sendall(
            (
                f"OPTIONS sip:ping@{daemon.host}:{daemon.tls_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP {daemon.host}:{sock.getsockname()[1]};branch=z9hG4bKplain\r\n"
                f"From: <sip:probe@{daemon.host}>;tag=plain\r\nTo: <sip:ping@{daemon.host}>\r\n"
                "Call-ID: plain-to-tls\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
        )
        # well under the daemon's 10 s handshake timeout: a bad ClientHello ends it at once
        deadline = time.monotonic() + 5
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65535)
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                break
            else:
                received += chunk
                closed = not chunk
        assert closed, f"the daemon kept the connection open; got {received!r}"
    assert b"SIP/2.0" not in received, received
    assert options_ping(daemon.host, daemon.port) is not None, daemon.log()[-3000:]
    assert tls_options(daemon).startswith(b"SIP/2.0 200")
