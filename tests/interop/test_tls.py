"""SIP over TLS (RFC 3261 §26.3.1, RFC 5630) against the real daemon, with a throwaway certificate.

Debian's sipp is built without OpenSSL ("To use a TLS transport you must compile SIPp with
OpenSSL"), so the call is made by baresip; the sipp test runs only where sipp has TLS. baresip 1.0
(libre 1.1) does not verify the server certificate even when given ``sip_cafile``, so certificate
verification is proved by Python's ssl client in ``test_options_over_verified_tls``. Client
certificates (``[sip] tls_verify_client``) and ``sips:`` Request-URIs are driven by that client too:
neither sipp here nor baresip can present a client certificate from a CA the test makes.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import BinaryIO

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
from tests.interop.test_ops import sample

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


def request(
    method: str,
    uri: str,
    *,
    via: tuple[str, str, int],
    call_id: str,
    cseq: int = 1,
    to: str | None = None,
    body: str = "",
) -> bytes:
    """One request from the test's client. ``via`` is (transport, host, port) of the client; ``to``
    the To header (with the daemon's tag, inside a dialog); ``body`` an SDP offer."""
    transport, host, port = via
    scheme, _, rest = uri.partition(":")
    to = to or f"<{scheme}:{rest.partition(';')[0]}>"
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK{time.monotonic_ns()};rport",
        f"From: <{scheme}:probe@{host}>;tag=probe",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <{scheme}:probe@{host}:{port}>",
        "Max-Forwards: 70",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def offer(host: str) -> str:
    return (
        f"v=0\r\no=probe 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )


def read_message(stream: BinaryIO) -> bytes:
    """The next SIP message on a stream (head, then Content-Length bytes); b"" once it closes."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline(65536)
        if not line:
            return b""
        if head or line.strip():  # CRLF keep-alives between messages are not a message
            head += line
    length = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head)
    return head + stream.read(int(length[1]) if length else 0)


def final_response(stream: BinaryIO) -> bytes:
    """Skip provisional responses; the final one, or b"" if the connection closed first."""
    while (message := read_message(stream)).startswith(b"SIP/2.0 1"):
        pass
    return message


def client_context(
    daemon: Daemon, certificate: tuple[pathlib.Path, pathlib.Path] | None = None
) -> ssl.SSLContext:
    """A client that verifies the daemon's certificate; ``certificate`` (cert, key) to present."""
    context = ssl.create_default_context(cafile=str(daemon.workdir / "cert.pem"))
    if certificate is not None:
        context.load_cert_chain(*map(str, certificate))
    return context


@contextlib.contextmanager
def tls_connection(
    daemon: Daemon, context: ssl.SSLContext | None = None, timeout: float = 5.0
) -> Iterator[tuple[ssl.SSLSocket, BinaryIO]]:
    """A verified TLS connection to the daemon's TLS port, and a buffered reader on it."""
    assert daemon.tls_port is not None
    with (
        socket.create_connection((daemon.host, daemon.tls_port), timeout=timeout) as raw,
        (context or client_context(daemon)).wrap_socket(raw, server_hostname=daemon.host) as sock,
        sock.makefile("rb") as stream,
    ):
        yield sock, stream


def tls_options(
    daemon: Daemon, context: ssl.SSLContext | None = None, *, scheme: str = "sip"
) -> bytes:
    """One OPTIONS over a verified TLS connection to the daemon's TLS port; the response."""
    assert daemon.tls_port is not None
    with tls_connection(daemon, context) as (sock, stream):
        params = ";transport=tls" if scheme == "sip" else ""  # sips: means TLS by itself
        uri = f"{scheme}:ping@{daemon.host}:{daemon.tls_port}{params}"
        via = ("TLS", daemon.host, sock.getsockname()[1])
        sock.sendall(request("OPTIONS", uri, via=via, call_id=f"tls-{time.monotonic_ns()}"))
        return final_response(stream)


def refused(daemon: Daemon, context: ssl.SSLContext) -> bool:
    """Whether the daemon refuses this client at the TLS layer. Under TLS 1.3 the client's side of
    the handshake completes before the server has judged the client's certificate, so the refusal
    may only show on the first read: an alert, a reset or a close, never a SIP answer."""
    try:
        return tls_options(daemon, context) == b""
    except (ssl.SSLError, ConnectionError):
        return True


def handshakes_failed(daemon: Daemon) -> float:
    """The daemon's count of failed TLS handshakes, from its /metrics."""
    with urllib.request.urlopen(daemon.ops_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return sample(
        text, "spaces_bridge_stream_refused_total", transport="tls", reason="tls_handshake"
    )


def udp_exchange(
    daemon: Daemon, build: Callable[[tuple[str, str, int]], bytes], timeout: float = 3.0
) -> bytes | None:
    """Send one request over UDP, built for its Via by ``build``; the first final response."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((daemon.host, 0))
        sock.settimeout(timeout)
        sock.sendto(build(("UDP", daemon.host, sock.getsockname()[1])), (daemon.host, daemon.port))
        with contextlib.suppress(TimeoutError):
            while (data := sock.recv(65535)).startswith(b"SIP/2.0 1"):
                pass
            return data
    return None


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
    failed = handshakes_failed(daemon)
    assert tls_options(daemon).startswith(b"SIP/2.0 200")
    assert failed >= 1 and handshakes_failed(daemon) == failed, daemon.log()[-3000:]


# -- client certificates ([sip] tls_verify_client) --------------------------------------------------


def openssl(*args: str) -> None:
    subprocess.run([need("openssl"), *args], check=True, capture_output=True)


def make_ca(directory: pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A CA (self-signed, marked CA:TRUE so that OpenSSL accepts it as an anchor): (cert, key)."""
    cert, key = directory / f"{name}-ca.pem", directory / f"{name}-ca.key"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name} CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def make_client(
    directory: pathlib.Path, name: str, ca: tuple[pathlib.Path, pathlib.Path]
) -> tuple[pathlib.Path, pathlib.Path]:
    """A phone's certificate signed by ``ca`` from a CSR, as an operator would issue it: (cert, key)."""
    cert, key, csr = (directory / f"{name}.{ext}" for ext in ("pem", "key", "csr"))
    extensions = directory / f"{name}.ext"
    extensions.write_text("extendedKeyUsage = clientAuth\n")
    openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-set_serial", "1", "-days", "1", "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def verifying_daemon(tmp_path: pathlib.Path, mode: str) -> Iterator[tuple[Daemon, pathlib.Path]]:
    """A daemon whose TLS listener checks client certificates against a fresh "Phones" CA; yields
    it and a directory holding phone.pem/key (signed by that CA) and stranger.pem/key (another CA)."""
    certs = tmp_path / "certs"
    certs.mkdir()
    phones = make_ca(certs, "Phones")
    make_client(certs, "phone", phones)
    make_client(certs, "stranger", make_ca(certs, "Other"))
    make_certificate(tmp_path)
    sip = f'tls_client_ca = "{phones[0]}"\ntls_verify_client = "{mode}"\n'
    with running_daemon(tmp_path, tls_port=free_port(), sip_config=sip) as daemon:
        yield daemon, certs


def pair(certs: pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    return certs / f"{name}.pem", certs / f"{name}.key"


def test_required_client_certificates(tmp_path: pathlib.Path) -> None:
    with verifying_daemon(tmp_path, "required") as (daemon, certs):
        phone = client_context(daemon, pair(certs, "phone"))
        assert tls_options(daemon, phone).startswith(b"SIP/2.0 200")
        assert refused(daemon, client_context(daemon)), "no client certificate, yet served"
        # The refused handshake left the listener serving the next phone.
        assert tls_options(daemon, phone).startswith(b"SIP/2.0 200")
        stranger = client_context(daemon, pair(certs, "stranger"))
        assert refused(daemon, stranger), "a certificate from another CA, yet served"
        assert tls_options(daemon, phone).startswith(b"SIP/2.0 200")
        assert options_ping(daemon.host, daemon.port) is not None  # UDP is not affected
        # Both refusals are counted for the operator, and the phone's three handshakes are not.
        assert handshakes_failed(daemon) == 2


def test_optional_client_certificates(tmp_path: pathlib.Path) -> None:
    """``optional`` lets a phone without a certificate in, but a certificate that is presented
    must still be one the CA signed."""
    with verifying_daemon(tmp_path, "optional") as (daemon, certs):
        assert tls_options(daemon, client_context(daemon)).startswith(b"SIP/2.0 200")
        phone = client_context(daemon, pair(certs, "phone"))
        assert tls_options(daemon, phone).startswith(b"SIP/2.0 200")
        assert refused(daemon, client_context(daemon, pair(certs, "stranger")))


# -- sips: Request-URIs (RFC 3261 §26.2.2, RFC 5630) -----------------------------------------------


def test_sips_over_udp_and_tcp_is_refused_with_416(daemon: Daemon) -> None:
    """A ``sips:`` request that reached us over a cleartext hop is refused (docs/decisions.md)."""
    host, port = daemon.host, daemon.port
    answer = udp_exchange(
        daemon,
        lambda via: request("OPTIONS", f"sips:ping@{host}:{port}", via=via, call_id="sips-udp-o"),
    )
    assert answer is not None and answer.startswith(b"SIP/2.0 416 "), answer
    answer = udp_exchange(
        daemon,
        lambda via: request(
            "INVITE", f"sips:demo@{host}:{port}", via=via, call_id="sips-udp-i", body=offer(host)
        ),
    )
    assert answer is not None and answer.startswith(b"SIP/2.0 416 "), answer
    assert b"Contact:" not in answer
    with socket.create_connection((host, port), timeout=5) as sock, sock.makefile("rb") as stream:
        via = ("TCP", host, sock.getsockname()[1])
        uri = f"sips:ping@{host}:{port}"
        sock.sendall(request("OPTIONS", uri, via=via, call_id="sips-tcp-options"))
        assert final_response(stream).startswith(b"SIP/2.0 416 ")
    daemon.wait_log("message rejected", "sips URI over a non-TLS transport")
    assert not daemon.log_has("call offered")
    assert options_ping(host, port) is not None


def test_sips_over_tls_is_served_with_a_sips_contact(daemon: Daemon) -> None:
    assert daemon.tls_port is not None
    assert tls_options(daemon, scheme="sips").startswith(b"SIP/2.0 200")
    host, port = daemon.host, daemon.tls_port
    with tls_connection(daemon) as (sock, stream):
        via = ("TLS", host, sock.getsockname()[1])
        call_id = f"sips-call-{time.monotonic_ns()}"
        uri = f"sips:demo@{host}:{port}"
        sock.sendall(request("INVITE", uri, via=via, call_id=call_id, body=offer(host)))
        answer = final_response(stream)
        assert answer.startswith(b"SIP/2.0 200"), answer
        # RFC 3261 §12.1.1: a sips Request-URI makes our Contact a SIPS URI; no transport=tls.
        contact = re.search(rb"(?im)^(?:contact|m)[ \t]*:[ \t]*<([^>]*)>", answer)
        assert contact is not None and contact[1] == f"sips:{host}:{port}".encode(), answer
        to = re.search(rb"(?im)^(?:to|t)[ \t]*:[ \t]*(.*?)\r$", answer)
        assert to is not None and b"tag=" in to[1]
        target, to_tagged = contact[1].decode(), to[1].decode()
        sock.sendall(request("ACK", target, via=via, call_id=call_id, to=to_tagged))
        sock.sendall(request("BYE", target, via=via, call_id=call_id, cseq=2, to=to_tagged))
        assert final_response(stream).startswith(b"SIP/2.0 200")
    daemon.wait_log("call ended")
