"""The ``[server]`` table: valid input becomes ``ServerConfig``; errors name the file and the key."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.conference.server.config import embedded_default
from bridge.conference.server.model import Caller
from bridge.conference.wire import GuestPolicy, Role
from bridge.config import ConfigError
from bridge.config.server import read_server

TOKEN = {"name": "console", "role": "moderator", "token": "a-long-enough-token"}


def test_valid_table() -> None:
    config = read_server(
        {
            "host": "::1",
            "port": 0,
            "tokens": [TOKEN],
            "spaces": [{"id": "room-1", "guest_policy": "ASK_MODERATOR", "prevent_unmuting": True}],
        },
        "f.toml",
    )
    assert (config.host, config.port) == ("::1", 0)
    assert config.spaces[0].settings.guest_policy is GuestPolicy.ASK_MODERATOR
    assert config.spaces[0].settings.prevent_unmuting and config.spaces[0].name == "room-1"
    assert config.caller("a-long-enough-token") == Caller("console", Role.MODERATOR)
    assert config.caller("a-long-enough-tokex") is None and config.caller(None) is None
    assert "a-long-enough-token" not in repr(config)


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPACES_TOKEN", "secret-from-the-environment")
    entry = {"name": "b", "role": "bridge", "token_env": "SPACES_TOKEN"}
    config = read_server({"tokens": [entry]}, "f.toml")
    assert config.caller("secret-from-the-environment") == Caller("b", Role.BRIDGE)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"hots": "x"}, "server.hots"),
        ({"host": "localhost"}, "server.host"),
        ({"port": 70000}, "server.port"),
        ({"port": True}, "server.port"),
        ({"tokens": {}}, "server.tokens"),
        ({"tokens": [{**TOKEN, "role": "admin"}]}, "server.tokens[0].role"),
        ({"tokens": [{**TOKEN, "token": "short"}]}, "server.tokens[0].token"),
        ({"tokens": [{"name": "x", "role": "member"}]}, "server.tokens[0]"),
        ({"tokens": [{**TOKEN, "token_file": "/nonexistent/file"}]}, "server.tokens[0]"),
        ({"tokens": [{**TOKEN, "name": "a b"}]}, "server.tokens[0].name"),
        ({"tokens": [TOKEN, TOKEN]}, "server.tokens"),
        ({"spaces": [{"id": "a/b"}]}, "server.spaces[0].id"),
        ({"spaces": [{"id": "a", "guest_policy": "MAYBE"}]}, "server.spaces[0].guest_policy"),
        ({"spaces": [{"id": "a", "mute_on_entry": 1}]}, "server.spaces[0].mute_on_entry"),
        ({"spaces": [{"id": "a"}, {"id": "a"}]}, "server.spaces"),
        ({"spaces": [{"id": "a", "dial_in_id": "12ab"}]}, "server.spaces[0].dial_in_id"),
        ({"spaces": [{"id": "a", "dial_in_id": -1}]}, "server.spaces[0].dial_in_id"),
        ({"spaces": [{"id": "a", "dial_in_id": "1" * 17}]}, "server.spaces[0].dial_in_id"),
        (
            {"spaces": [{"id": "a", "dial_in_id": 7}, {"id": "b", "dial_in_id": "7"}]},
            "server.spaces[1].dial_in_id",
        ),
        ({"spaces": [{"id": "a", "host_pin": "1234"}]}, "server.spaces[0].host_pin"),
        (
            {"spaces": [{"id": "a", "host_pin_env": "NO_SUCH_VAR_X"}]},
            "server.spaces[0].host_pin_env",
        ),
        ({"meeting_capacity": 0}, "server.meeting_capacity"),
        ({"meeting_capacity": "many"}, "server.meeting_capacity"),
        ({"session_timeout_seconds": 0}, "server.session_timeout_seconds"),
        ({"session_timeout_seconds": -1}, "server.session_timeout_seconds"),
        ({"session_timeout_seconds": "30"}, "server.session_timeout_seconds"),
        ({"session_timeout_seconds": 86401}, "server.session_timeout_seconds"),
    ],
)
def test_errors_name_file_and_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_server(data, "f.toml")
    assert (info.value.source, info.value.key) == ("f.toml", key)
    assert "a-long-enough-token" not in str(info.value)


def test_dial_in_id_and_host_pin(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("424242\n")
    monkeypatch.setenv("BOARD_PIN", "12")
    spaces = [
        {"id": "a", "dial_in_id": 1000},
        {"id": "b", "dial_in_id": "0042", "host_pin_file": str(pin_file)},
    ]
    config = read_server({"spaces": spaces}, "f.toml")
    assert [s.dial_in_id for s in config.spaces] == ["1000", "0042"]
    assert config.spaces[1].host_pin == "424242" and config.spaces[0].host_pin is None
    assert "424242" not in repr(config)
    short = [{"id": "c", "dial_in_id": "1", "host_pin_env": "BOARD_PIN"}]
    with pytest.raises(ConfigError) as caught:
        read_server({"spaces": short}, "f.toml")
    assert "server.spaces[0].host_pin_env" in str(caught.value)
    assert "4-16 digits" in str(caught.value) and "12" not in str(caught.value).split(":")[-1]
    without_id = [{"id": "d", "host_pin_file": str(pin_file)}]
    with pytest.raises(ConfigError, match=r"server.spaces\[0\].dial_in_id"):
        read_server({"spaces": without_id}, "f.toml")


def test_meeting_capacity_is_read() -> None:
    assert read_server({}, "f.toml").meeting_capacity == 500
    assert read_server({"meeting_capacity": 60000}, "f").meeting_capacity == 60000


def test_embedded_default() -> None:
    config = embedded_default("dev-token-0123456789")
    assert (config.host, config.port, config.show_tokens) == ("127.0.0.1", 8080, True)
    assert [s.id for s in config.spaces] == ["demo"]
    assert config.spaces[0].settings.auto_start
    assert config.caller("dev-token-0123456789") == Caller("console", Role.MODERATOR)
    assert [t.role for t in config.tokens] == [Role.MODERATOR, Role.BRIDGE]


def test_session_timeout_is_read() -> None:
    assert read_server({}, "f.toml").session_timeout_seconds == 30
    assert read_server({"session_timeout_seconds": 2.5}, "f").session_timeout_seconds == 2.5
