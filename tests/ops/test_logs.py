"""The SIP trace never shows credentials."""

from __future__ import annotations

import json

import pytest
import structlog

from bridge.ops.logs import configure, redacted


def test_credentials_are_redacted_and_the_rest_kept() -> None:
    message = (
        b"INVITE sip:demo@h SIP/2.0\r\n"
        b'Authorization: Digest username="alice", response="6629fae49393a05397450978507c4ef1"\r\n'
        b'proxy-authorization : Digest username="bob", response="secret"\r\n'
        b"Call-ID: c1\r\n\r\n"
    )
    text = redacted(message)
    assert "6629fae4" not in text and "secret" not in text and "alice" not in text
    assert "Authorization: <redacted>" in text
    assert "proxy-authorization : <redacted>" in text
    assert "Call-ID: c1" in text and text.startswith("INVITE sip:demo@h SIP/2.0")


def test_trace_is_bounded() -> None:
    assert len(redacted(b"x" * 100_000)) == 4096


def test_reconfiguring_changes_existing_loggers(capsys: pytest.CaptureFixture[str]) -> None:
    logger = structlog.get_logger("bridge.test")
    configure(level="info")
    logger.info("first", n=1)
    configure(level="warning", json=True)
    logger.info("hidden")
    logger.warning("second", n=2)
    err = capsys.readouterr().err
    assert "first" in err and "hidden" not in err
    assert json.loads(err.strip().splitlines()[-1])["event"] == "second"
    # Loggers are not cached: leave none bound to this test's captured (soon closed) stderr.
    structlog.reset_defaults()
