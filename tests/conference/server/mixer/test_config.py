"""The files Janus runs with (pure rendering), the runtime folder they are written into, and the
checks on the configuration."""

from __future__ import annotations

import pathlib
import stat

import pytest

from bridge.conference.server.mixer.config import (
    AUDIOBRIDGE_LIBRARY,
    HTTP_LIBRARY,
    JanusConfig,
    JanusSecrets,
    find_libraries,
    render_configs,
    write_runtime,
)

SECRETS = JanusSecrets("api-s", "admin-s", "admin-k", "room-s")
FOLDER = pathlib.Path("/run/janus-x")


def files(config: JanusConfig | None = None) -> dict[str, str]:
    return render_configs(config or JanusConfig(executable=None), SECRETS, FOLDER, 8088, 7088)


def settings(text: str) -> dict[str, str]:
    """``section.key`` -> literal, from the generated jcfg (one setting per line)."""
    found: dict[str, str] = {}
    section = ""
    for line in map(str.strip, text.splitlines()):
        if line.endswith(": {"):
            section = line[:-3]
        elif " = " in line:
            key, _, value = line.partition(" = ")
            found[f"{section}.{key}"] = value
    return found


def test_the_core_listens_on_the_host_only_and_logs_to_stdout() -> None:
    core = settings(files()["janus.jcfg"])
    assert core["general.interface"] == '"127.0.0.1"'
    assert core["general.log_to_stdout"] == "true"
    assert core["general.debug_colors"] == "false"
    assert core["general.session_timeout"] == "60"
    assert core["general.api_secret"] == '"api-s"'
    assert core["general.admin_secret"] == '"admin-s"'
    assert core["nat.ice_enforce_list"] == '"lo"'
    assert not any("stun" in key or "turn" in key for key in core)


def test_the_core_loads_libraries_from_the_runtime_folder_only() -> None:
    core = settings(files()["janus.jcfg"])
    assert core["general.configs_folder"] == '"/run/janus-x"'
    for kind in ("plugins", "transports", "events", "loggers"):
        assert core[f"general.{kind}_folder"] == f'"/run/janus-x/{kind}"'


def test_the_audiobridge_locks_rooms_and_binds_rtp_to_the_host() -> None:
    config = JanusConfig(executable=None, host="127.0.0.2", rtp_port_min=40000, rtp_port_max=40999)
    bridge = settings(files(config)["janus.plugin.audiobridge.jcfg"])
    assert bridge["general.admin_key"] == '"admin-k"'
    assert bridge["general.local_ip"] == '"127.0.0.2"'
    assert bridge["general.rtp_port_range"] == '"40000-40999"'
    assert bridge["general.lock_rtp_forward"] == "true"
    assert not any(key.startswith("room-") for key in bridge)  # no static rooms


def test_both_http_apis_listen_on_the_host_only() -> None:
    http = settings(files()["janus.transport.http.jcfg"])
    assert http["general.ip"] == '"127.0.0.1"'
    assert http["general.port"] == "8088"
    assert http["general.https"] == "false"
    assert http["admin.admin_http"] == "true"
    assert http["admin.admin_ip"] == '"127.0.0.1"'
    assert http["admin.admin_port"] == "7088"


def test_strings_are_quoted_and_control_characters_refused() -> None:
    tricky = JanusSecrets('a"b\\c', "x", "y", "z")
    core = render_configs(JanusConfig(executable=None), tricky, FOLDER, 1, 2)["janus.jcfg"]
    assert 'api_secret = "a\\"b\\\\c"' in core
    with pytest.raises(ValueError, match="control characters"):
        render_configs(
            JanusConfig(executable=None), JanusSecrets("a\nb", "x", "y", "z"), FOLDER, 1, 2
        )


def test_secrets_are_random_and_never_in_a_repr() -> None:
    one, two = JanusSecrets.generate(), JanusSecrets.generate()
    assert len(set(one.values()) | set(two.values())) == 8
    assert all(len(value) >= 32 for value in one.values())
    assert not any(value in repr(one) for value in one.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": "::1"}, "IPv4 only"),
        ({"http_port": 70000}, "http_port"),
        ({"rtp_port_min": 5000, "rtp_port_max": 4000}, "RTP ports"),
        ({"sampling_rate": 44100}, "sampling rate"),
        ({"keepalive_interval": 40.0}, "keepalive"),
        ({"debug_level": 9}, "debug level"),
    ],
)
def test_a_wrong_configuration_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JanusConfig(executable=None, **change)  # type: ignore[arg-type]


def test_the_libraries_are_found_in_a_given_folder(tmp_path: pathlib.Path) -> None:
    config = JanusConfig(executable=None, library_dir=str(tmp_path))
    assert find_libraries(config) is None
    (tmp_path / "plugins").mkdir()
    (tmp_path / "transports").mkdir()
    (tmp_path / "plugins" / AUDIOBRIDGE_LIBRARY).write_bytes(b"")
    assert find_libraries(config) is None  # the HTTP transport is missing
    (tmp_path / "transports" / HTTP_LIBRARY).write_bytes(b"")
    assert find_libraries(config) == {
        "plugins": tmp_path / "plugins" / AUDIOBRIDGE_LIBRARY,
        "transports": tmp_path / "transports" / HTTP_LIBRARY,
    }


def test_the_runtime_folder_holds_private_files_and_two_links(tmp_path: pathlib.Path) -> None:
    library = tmp_path / "lib.so"
    library.write_bytes(b"")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    configs = {"janus.jcfg": "general: {\n}\n"}
    for _ in range(2):  # a restart writes over the previous start's files
        write_runtime(runtime, configs, {"plugins": library, "transports": library})
    assert stat.S_IMODE((runtime / "janus.jcfg").stat().st_mode) == 0o600
    assert (runtime / "janus.jcfg").read_text() == configs["janus.jcfg"]
    for kind in ("plugins", "transports"):
        links = list((runtime / kind).iterdir())
        assert [link.name for link in links] == ["lib.so"]
        assert links[0].is_symlink() and links[0].resolve() == library
    assert not any((runtime / "events").iterdir())
