"""Configuration: defaults, the shipped files, and errors that name file, key and expectation."""

from __future__ import annotations

import json
import pathlib
import re
import ssl
import tomllib

import pytest
from prometheus_client import generate_latest

from bridge.config import ClientVerify, ConfigError, from_mapping, load
from bridge.media.relay import Relay
from bridge.ops.metrics import Metrics
from bridge.ops.workers import worker_config
from bridge.sip.address import Transport

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: A remote conference server (the token from any variable that is set), as workers need.
REMOTE = {"conference": {"url": "http://conference.example", "token_env": "HOME"}}


def test_defaults_listen_on_loopback_udp_and_tcp() -> None:
    config = load(None)
    assert [str(item) for item in config.sip.listen] == ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
    assert config.sip.version_header == "spacesVersion"


def test_shipped_default_file_loads() -> None:
    config = load(ROOT / "config" / "bridge.toml")
    assert config.sip.listen[0].transport is Transport.UDP


def test_listen_forms(tmp_path: pathlib.Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    config = from_mapping(
        {
            "sip": {
                "listen": ["udp:[::1]:5070", "tcp:127.0.0.1"],
                "tls_certificate": str(cert),
                "tls_private_key": str(key),
            }
        },
        "t.toml",
    )
    assert [str(item) for item in config.sip.listen] == [
        "udp:[::1]:5070",
        "tcp:127.0.0.1:5060",
        "tls:[::1]:5061",  # added for the certificate, on the first listener's host
    ]


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"sip": {"listen": ["sctp:127.0.0.1:5060"]}}, "sip.listen[0]", "udp, tcp or tls"),
        ({"sip": {"listen": ["udp:example.com:5060"]}}, "sip.listen[0]", "IP address"),
        ({"sip": {"listen": ["udp:127.0.0.1:70000"]}}, "sip.listen[0]", "port"),
        ({"sip": {"listen": []}}, "sip.listen", "at least one"),
        ({"sip": {"listen": ["udp:0.0.0.0:5060"]}}, "sip.advertise", "required"),
        ({"sip": {"listen": ["tls:127.0.0.1:5061"]}}, "sip.listen", "tls_certificate"),
        ({"sip": {"tls_certificate": "/nonexistent/cert.pem"}}, "sip.tls_certificate", "no such"),
        ({"sip": {"tls_client_ca": "/nonexistent/ca.pem"}}, "sip.tls_client_ca", "no such"),
        ({"sip": {"tls_verify_client": "always"}}, "sip.tls_verify_client", '"required", got'),
        ({"sip": {"tls_verify_client": "Required"}}, "sip.tls_verify_client", '"optional"'),
        ({"sip": {"tls_verify_client": True}}, "sip.tls_verify_client", "expected str"),
        ({"sip": {"tls_verify_client": "required"}}, "sip.tls_verify_client", "tls_client_ca"),
        ({"sip": {"tls_verify_client": "optional"}}, "sip.tls_verify_client", "tls_client_ca"),
        ({"sip": {"user_agent": 5}}, "sip.user_agent", "expected str"),
        ({"sip": {"bogus": 1}}, "sip.bogus", "unknown key"),
        ({"media": {"host": "0.0.0.0"}}, "media.host", "not 0.0.0.0"),
        ({"media": {"port_min": 30000, "port_max": 20000}}, "media.port_max", "below"),
        ({"media": {"port_min": 30000, "port_max": 30002}}, "media.port_max", "5 ports"),
        ({"drain": {"grace_seconds": -1}}, "drain.grace_seconds", "seconds"),
        ({"conference": {"url": "ftp://x"}}, "conference.url", "http://"),
        ({"conference": {"url": "http://x"}}, "conference.token_file", "token"),
        ({"conference": {"token_env": "NO_SUCH_VARIABLE_SET"}}, "conference.token_env", "not set"),
        (
            {"conference": {"url": "http://x", "token_file": "/nonexistent"}},
            "conference.token_file",
            "cannot read",
        ),
        ({"calls": {"mute_key": "*x"}}, "calls.mute_key", "DTMF keys"),
        ({"calls": {"mute_key": "*9"}}, "calls.mute_key", "another key sequence"),
        ({"calls": {"hand_key": "*"}}, "calls.hand_key", "another key sequence"),
        ({"calls": {"modern_signalling": ["smoke"]}}, "calls.modern_signalling", '"sdp"'),
        ({"calls": {"lobby_timeout_seconds": "1"}}, "calls.lobby_timeout_seconds", "seconds"),
        ({"dialplan": {"100": 100}}, "dialplan.100", "space id"),
        ({"calls": {"lobby_mode": "hum"}}, "calls.lobby_mode", '"ring" or "answer"'),
        ({"calls": {"user_agents": [{"match": "x"}]}}, "calls.user_agents[0].signalling", "list"),
        (
            {"calls": {"user_agents": [{"signalling": ["sdp"]}]}},
            "calls.user_agents[0].match",
            "pattern",
        ),
        ({"server": {"port": 70000}}, "server.port", "0-65535"),
        (
            {"server": {}, "conference": {"url": "http://x", "token_env": "HOME"}},
            "server",
            "embedded",
        ),
        ({"limits": {"max_dialogs": 0}}, "limits.max_dialogs", "count >= 1"),
        ({"limits": {"invite_burst_per_source": 0}}, "limits.invite_burst_per_source", "1 message"),
        ({"sip": {"timer_t1_ms": 1}}, "sip.timer_t1_ms", "milliseconds"),
        ({"limits": {"lobby_per_space": 2.5}}, "limits.lobby_per_space", "expected int"),
        ({"limits": {"max_transactions": True}}, "limits.max_transactions", "expected int"),
        ({"limits": {"trusted_proxies": "10.0.0.1"}}, "limits.trusted_proxies", "a list"),
        (
            {"limits": {"trusted_proxies": ["10.0.0.1", "proxy.example.net"]}},
            "limits.trusted_proxies",
            "'proxy.example.net' is not an IP address",
        ),
        ({"nonsense": {}}, "nonsense", "unknown key"),
        ({"sip": {"workers": 0}}, "sip.workers", "from 1 to 64"),
        ({"sip": {"workers": 65}}, "sip.workers", "from 1 to 64"),
        ({"sip": {"workers": "auto"}}, "sip.workers", "expected int"),
        ({"sip": {"workers": 2}}, "sip.workers", "remote conference server"),
        (
            {"sip": {"workers": 4}, "media": {"port_min": 30000, "port_max": 30018}, **REMOTE},
            "media.port_max",
            "5 ports per worker (20 for 4 workers)",
        ),
        (
            {"sip": {"workers": 2, "listen": ["udp:127.0.0.1:0"]}, **REMOTE},
            "sip.listen[0]",
            "port 0",
        ),
        (
            {"sip": {"workers": 2}, "ops": {"listen": "127.0.0.1:65535"}, **REMOTE},
            "ops.listen",
            "+ 1",
        ),
        ({"sip": "udp"}, "sip", "table"),
    ],
)
def test_errors_name_file_key_and_expectation(
    data: dict[str, object], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(data, "bridge.toml")
    assert info.value.key == key
    assert str(info.value).startswith(f"bridge.toml: {key}: ")
    assert words in str(info.value)


def test_media_prompts_dir_is_checked_when_the_file_is_read(tmp_path: pathlib.Path) -> None:
    def media(value: str) -> dict[str, object]:
        return {"media": {"prompts_dir": value}}

    assert load(None).media.prompts_dir is None
    (tmp_path / "muted.pcmu").write_bytes(b"\xff" * 320)
    assert from_mapping(media(str(tmp_path)), "b.toml").media.prompts_dir == tmp_path
    for value, words in (
        (str(tmp_path / "absent"), f"no such directory: {tmp_path / 'absent'}"),
        (str(tmp_path / "muted.pcmu"), "no such directory"),
    ):
        with pytest.raises(ConfigError, match=re.escape(words)) as info:
            from_mapping(media(value), "b.toml")
        assert info.value.key == "media.prompts_dir"
    # A recording the relay could not play is found by check-config, not by a phone.
    (tmp_path / "unmuted.pcma").write_bytes(b"\xd5" * 100)
    with pytest.raises(ConfigError) as info:
        from_mapping(media(str(tmp_path)), "b.toml")
    assert info.value.key == "media.prompts_dir"
    assert f"{tmp_path / 'unmuted.pcma'} is 100 bytes" in str(info.value)


def test_client_certificate_verification(tmp_path: pathlib.Path) -> None:
    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca")}
    for path in files.values():
        path.write_text("x")
    tls = {"tls_certificate": str(files["cert"]), "tls_private_key": str(files["key"])}
    assert from_mapping({"sip": tls}, "b.toml").sip.tls_verify_client is ClientVerify.NONE
    for value, mode in (("optional", ssl.CERT_OPTIONAL), ("required", ssl.CERT_REQUIRED)):
        sip = from_mapping(
            {"sip": {**tls, "tls_client_ca": str(files["ca"]), "tls_verify_client": value}},
            "b.toml",
        ).sip
        assert sip.tls_client_ca == files["ca"]
        assert sip.tls_verify_client.mode is mode
    # A CA nobody consults would read as protection; a client check needs a TLS listener.
    for data, words in (
        ({**tls, "tls_client_ca": str(files["ca"])}, "unused"),
        ({"tls_client_ca": str(files["ca"]), "tls_verify_client": "required"}, "tls_certificate"),
    ):
        with pytest.raises(ConfigError, match=words) as info:
            from_mapping({"sip": data}, "b.toml")
        assert info.value.key == "sip.tls_verify_client"


def test_unreadable_and_invalid_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sip\nlisten = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: -: not valid TOML"):
        load(bad)


def test_conference_tables(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "bridge.token"
    token.write_text("remote-bridge-token\n")
    remote = from_mapping(
        {"conference": {"url": "http://conf.example:8080/", "token_file": str(token)}}, "b.toml"
    )
    assert remote.conference.url == "http://conf.example:8080"
    assert remote.conference.token == "remote-bridge-token"
    assert "remote-bridge-token" not in repr(remote)
    monkeypatch.setenv("BRIDGE_TOKEN", "from-the-environment")
    env = from_mapping({"conference": {"url": "https://c", "token_env": "BRIDGE_TOKEN"}}, "b.toml")
    assert env.conference.token == "from-the-environment"
    embedded = from_mapping(
        {
            "server": {"port": 0, "spaces": [{"id": "sales", "guest_policy": "ASK_MODERATOR"}]},
            "dialplan": {"100": "sales"},
            "calls": {"mute_key": "#1", "legacy_signalling": ["sdp", "info"]},
        },
        "b.toml",
    )
    assert embedded.conference.url is None
    assert embedded.server is not None and embedded.server.spaces[0].id == "sales"
    assert embedded.dialplan == {"100": "sales"}
    assert embedded.calls.mute_key == "#1"
    assert embedded.calls.legacy_signalling == ("sdp", "info")


def test_production_example_documents_only_known_keys(tmp_path: pathlib.Path) -> None:
    """Every key of the documented example is one the loader knows (files it names are faked)."""
    data = tomllib.loads((ROOT / "config" / "production.example.toml").read_text())
    for key in ("tls_certificate", "tls_private_key"):
        fake = tmp_path / key
        fake.write_text("x")
        data["sip"][key] = str(fake)
    token = tmp_path / "token"
    token.write_text("bridge-token")
    data["conference"]["token_file"] = str(token)
    data["auth"]["users"][0]["password_file"] = str(token)
    data["auth"]["users"][1]["password_env"] = "HOME"
    config = from_mapping(data, "production.example.toml")
    assert config.conference.url == "https://spaces.example.net"
    assert config.dialplan["100"] == "demo"
    assert config.limits.lobby_per_space == 50
    # The commented-out workers line is valid as written.
    (line,) = [
        line
        for line in (ROOT / "config" / "production.example.toml").read_text().splitlines()
        if "workers =" in line
    ]
    data["sip"].update(tomllib.loads(line.lstrip("# ")))
    assert from_mapping(data, "production.example.toml").sip.workers == 4


def test_ops_table() -> None:
    ops = from_mapping({"ops": {"listen": "[::1]:9200", "sip_trace": True}}, "b.toml").ops
    assert ops.address == ("::1", 9200) and ops.sip_trace
    assert from_mapping({"ops": {"listen": ""}}, "b.toml").ops.address is None
    with pytest.raises(ConfigError, match=r"ops\.listen"):
        from_mapping({"ops": {"listen": "localhost"}}, "b.toml")


class Mixer:
    """What the embedded server's RunningServer tells the metrics of its mixer."""

    mixer_up = True
    mixer_restarts = 0


def test_grafana_dashboard_uses_only_metrics_the_bridge_exports() -> None:
    """Every metric the dashboard charts exists (a renamed metric must not leave an empty panel)."""
    metrics = Metrics()
    metrics.watch_media(
        Relay("127.0.0.1", 20000, 20099, prompts=None)
    )  # what a daemon with the relay exports
    metrics.watch_mixer(Mixer())  # and with the embedded server's mixer
    exported = generate_latest(metrics.registry).decode()
    names = set(re.findall(r"^# TYPE (\w+) (\w+)", exported, re.M))
    known = {n for n, _ in names} | {n + s for n, t in names for s in ("_total", "_bucket")}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"spaces_bridge_\w+", target["expr"])
    }
    assert used and used <= known, used - known


def test_workers_split_the_media_range_and_the_ops_ports() -> None:
    config = from_mapping(
        {
            "sip": {"workers": 3},
            "media": {"port_min": 20000, "port_max": 20999},
            "ops": {"listen": "[::1]:9200"},
            **REMOTE,
        },
        "b.toml",
    )
    assert config.worker is None and config.media.port_max == 20999  # the file's whole range
    workers = [config.for_worker(i) for i in range(3)]
    ranges = [(w.media.port_min, w.media.port_max) for w in workers]
    assert ranges == [(20000, 20332), (20333, 20665), (20666, 20998)]
    assert [w.ops.address for w in workers] == [("::1", 9200), ("::1", 9201), ("::1", 9202)]
    assert [w.worker for w in workers] == [0, 1, 2]
    assert workers[1].sip == config.sip and workers[1].conference == config.conference
    # The smallest range that fits: five ports each (four from an even one), disjoint.
    tight = from_mapping(
        {"sip": {"workers": 2}, "media": {"port_min": 30001, "port_max": 30010}, **REMOTE}, "b.toml"
    )
    assert [(w.media.port_min, w.media.port_max) for w in map(tight.for_worker, (0, 1))] == [
        (30001, 30005),
        (30006, 30010),
    ]
    # Port 0 (any) stays 0 for every worker; one worker is the daemon as configured.
    any_port = from_mapping(
        {"sip": {"workers": 2}, "ops": {"listen": "127.0.0.1:0"}, **REMOTE}, "b"
    )
    assert any_port.for_worker(1).ops.listen == "127.0.0.1:0"
    alone = load(None)
    assert alone.for_worker(0).media == alone.media and alone.for_worker(0).ops == alone.ops


def test_the_config_knows_which_tables_its_file_has() -> None:
    # spaces-bridge server serves [ops] only when its file asks for it.
    assert load(None).tables == frozenset()
    assert from_mapping({"server": {}, "ops": {"listen": ""}}, "s.toml").tables == {"server", "ops"}


def test_only_a_max_dialogs_the_file_sets_is_checked_against_the_media_range() -> None:
    # The defaults (60,000 dialogs, 2,500 relayed calls) and a file that leaves max_dialogs
    # alone warn of nothing: the range is the relayed calls' bound.
    assert load(None).warnings == ()
    small = {"media": {"port_min": 40000, "port_max": 40007}}
    assert from_mapping(small, "b.toml").warnings == ()
    (over,) = from_mapping({**small, "limits": {"max_dialogs": 3}}, "b.toml").warnings
    assert over.startswith("b.toml: limits.max_dialogs: admits 3 calls") and "carries 2" in over
    assert from_mapping({**small, "limits": {"max_dialogs": 2}}, "b.toml").warnings == ()
    relay_off = {"media": {**small["media"], "relay": False}, "limits": {"max_dialogs": 3}}
    assert from_mapping(relay_off, "b.toml").warnings == ()
    # Each worker carries its share of the range.
    media = {"port_min": 40000, "port_max": 40015}
    workers = {"sip": {"workers": 2}, "media": media, "limits": {"max_dialogs": 3}, **REMOTE}
    (shared,) = from_mapping(workers, "b.toml").warnings
    assert "carries 2 per worker" in shared
    assert from_mapping(workers, "b.toml").for_worker(1).warnings == (shared,)


def test_a_worker_refuses_a_file_whose_worker_count_changed() -> None:
    config = from_mapping({"sip": {"workers": 2}, **REMOTE}, "b.toml")
    assert worker_config(config, "1/2").worker == 1
    for spec, words in (("1/3", "the supervisor started 3"), ("2/2", "no worker 2"), ("x", "bad")):
        with pytest.raises(ConfigError, match=words) as info:
            worker_config(config, spec)
        assert info.value.key == "sip.workers"
