"""What the mixer's Janus runs with: :class:`JanusConfig` (the operator's choices), :class:`JanusSecrets`
(made fresh for each process), and the files written into its private runtime folder. Pure except
for :func:`find_libraries` and :func:`write_runtime`, which read and write the file system.

Janus reads a folder of its own (``--configs-folder``): ``janus.jcfg`` for the core,
``janus.plugin.audiobridge.jcfg`` and ``janus.transport.http.jcfg``. It loads every library found in
the folders ``plugins_folder`` and ``transports_folder`` name, so those are folders of the runtime
folder holding one symlink each (AudioBridge, HTTP): nothing else Debian ships (SIP, streaming,
WebSockets, MQTT...) is loaded or listens. docs/mixer.md lists every setting and why.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import secrets
import shutil
import sysconfig
from dataclasses import dataclass, field

AUDIOBRIDGE_LIBRARY = "libjanus_audiobridge.so"
HTTP_LIBRARY = "libjanus_http.so"
INSTALL_HINT = "apt-get install janus"
"""What an operator runs when Janus or one of its libraries is missing (Debian's package)."""

SAMPLING_RATES = (8000, 12000, 16000, 24000, 48000)
"""What AudioBridge 1.1.2 accepts for a room."""


def _which_janus() -> str | None:
    return shutil.which("janus")


@dataclass(frozen=True, slots=True)
class JanusConfig:
    executable: str | None = field(default_factory=_which_janus)
    """The ``janus`` binary; by default the one on ``PATH`` (None when there is none)."""
    library_dir: str | None = None
    """The folder holding ``plugins/`` and ``transports/`` (None: where Debian puts them)."""
    runtime_parent: str | None = None
    """Where the private runtime folder is made (None: the system's temporary folder; under
    systemd's ``PrivateTmp`` that is the service's own)."""
    host: str = "127.0.0.1"
    """The IPv4 address the HTTP APIs listen on and AudioBridge binds plain RTP to (``local_ip``):
    the address the bridge sends each phone's audio to. IPv4 only: 1.1.2's plain-RTP sockets are
    ``AF_INET``."""
    http_port: int = 0
    """The Janus API's port; 0 picks a free one at every (re)start."""
    admin_port: int = 0
    """The admin API's port; 0 picks a free one at every (re)start."""
    rtp_port_min: int = 30000
    """First port of AudioBridge's plain-RTP range (one even port per phone participant). The
    default sits between the bridge's relay range (20000-29999) and Linux's ephemeral ports
    (32768-60999), so that neither can take a port Janus expects to bind."""
    rtp_port_max: int = 32767
    """Last port of that range."""
    sampling_rate: int = 8000
    """Every room's mixing rate. 8 kHz: 1.1.2 upsamples G.711 to 16 or 48 kHz by inserting zeros
    without a filter, which adds a mirror image of every tone (8 kHz - f) almost as loud as the
    tone; at 8 kHz the mix is clean (and narrowband for everyone)."""
    session_timeout: int = 60
    """Seconds without a request or long poll after which Janus destroys a session and with it
    every participant the session's handles joined."""
    keepalive_interval: float = 15.0
    """Seconds between the API client's keepalives, well under ``session_timeout``: the long poll
    keeps the session alive too, the keepalive covers a poll that is between reconnections."""
    start_timeout: float = 5.0
    """How long a start may take until ``GET /janus/info`` answers (typically 40-110 ms)."""
    stop_grace: float = 5.0
    """Seconds between SIGTERM and SIGKILL (1.1.2 exits 1-2 s after SIGTERM)."""
    restart_delay: float = 0.2
    """The supervisor's first delay before restarting an exited Janus; doubled after every exit
    that came soon after a start, up to ``restart_delay_max``."""
    restart_delay_max: float = 30.0
    """The cap of that delay: a Janus that cannot run is retried twice a minute, not in a loop."""
    stable_after: float = 60.0
    """A Janus that ran this long before exiting is restarted after ``restart_delay`` again."""
    debug_level: int = 4
    """Janus's own log level (0-7; 4 = info). Its lines are logged at debug level, errors at
    warning level."""

    def __post_init__(self) -> None:
        if ipaddress.ip_address(self.host).version != 4:
            raise ValueError(f"janus host {self.host}: AudioBridge's plain RTP is IPv4 only")
        for name in ("http_port", "admin_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ValueError(f"janus {name} {getattr(self, name)} is not 0-65535")
        if not 1024 <= self.rtp_port_min < self.rtp_port_max <= 65535:
            raise ValueError(
                f"janus RTP ports {self.rtp_port_min}-{self.rtp_port_max}: expected "
                "1024 <= min < max <= 65535"
            )
        if self.sampling_rate not in SAMPLING_RATES:
            raise ValueError(
                f"janus sampling rate {self.sampling_rate} is not one of {SAMPLING_RATES}"
            )
        if not 0 < self.keepalive_interval < self.session_timeout / 2:
            raise ValueError("janus keepalive interval must be under half the session timeout")
        if not 0 <= self.debug_level <= 7:
            raise ValueError(f"janus debug level {self.debug_level} is not 0-7")


@dataclass(frozen=True, slots=True)
class JanusSecrets:
    """The secrets one Janus process runs with, made at random for it and held only in memory and
    in its 0700 runtime folder (never logged: ``repr`` hides them)."""

    api_secret: str = field(repr=False)
    """Every Janus API request carries it: other local users reach loopback too."""
    admin_secret: str = field(repr=False)
    """Every admin API request carries it."""
    admin_key: str = field(repr=False)
    """AudioBridge creates rooms only for requests that carry it."""
    room_secret: str = field(repr=False)
    """Every room's secret: destroy, mute, unmute and kick need it."""

    @classmethod
    def generate(cls) -> JanusSecrets:
        return cls(*(secrets.token_urlsafe(24) for _ in range(4)))

    def values(self) -> tuple[str, ...]:
        return (self.api_secret, self.admin_secret, self.admin_key, self.room_secret)


def _quote(text: str) -> str:
    """A jcfg (libconfig) string literal."""
    if any(ord(c) < 0x20 for c in text):
        raise ValueError("a janus configuration string cannot hold control characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _section(name: str, items: dict[str, str | int | bool]) -> str:
    lines = [f"{name}: {{"]
    for key, value in items.items():
        if isinstance(value, bool):
            literal = "true" if value else "false"
        elif isinstance(value, int):
            literal = str(value)
        else:
            literal = _quote(value)
        lines.append(f"\t{key} = {literal}")
    lines.append("}")
    return "\n".join(lines)


def render_configs(
    config: JanusConfig,
    secrets: JanusSecrets,
    folder: pathlib.Path,
    http_port: int,
    admin_port: int,
) -> dict[str, str]:
    """The configuration files for one start: file name in ``folder`` -> text."""
    general: dict[str, str | int | bool] = {
        "configs_folder": str(folder),
        "plugins_folder": str(folder / "plugins"),
        "transports_folder": str(folder / "transports"),
        # Empty folders: no event handler or external logger is loaded.
        "events_folder": str(folder / "events"),
        "loggers_folder": str(folder / "loggers"),
        "log_to_stdout": True,
        "debug_level": config.debug_level,
        "debug_timestamps": False,  # our log lines carry the time
        "debug_colors": False,
        # Without it, SDPs (the browsers' later) carry one of the host's other addresses.
        "interface": config.host,
        "server_name": "spaces-bridge-mixer",
        "session_timeout": config.session_timeout,
        "reclaim_session_timeout": 0,
        "api_secret": secrets.api_secret,
        "admin_secret": secrets.admin_secret,
        "hide_dependencies": True,
    }
    core = "\n".join(
        [
            "# Generated by spaces-bridge for one Janus process (docs/mixer.md); not kept.",
            _section("general", general),
            _section("certificates", {}),
            _section("media", {}),
            # No STUN or TURN. This does not keep browsers' ICE on loopback: 1.1.2 skips loopback
            # interfaces before reading the list, adds no address at all, and libnice then
            # gathers on every other interface (docs/mixer.md, Browsers). Plain RTP is bound to
            # ``local_ip`` below, not to this.
            _section("nat", {"nice_debug": False, "ice_enforce_list": "lo", "ignore_mdns": True}),
            _section("plugins", {}),
            _section("transports", {}),
            _section("loggers", {}),
            _section("events", {}),
            "",
        ]
    )
    audiobridge = "\n".join(
        [
            "# Generated by spaces-bridge (docs/mixer.md). No static rooms: every room is made",
            "# through the API, with the admin key below.",
            _section(
                "general",
                {
                    "admin_key": secrets.admin_key,
                    "lock_rtp_forward": True,  # forwarding the mix elsewhere needs the key too
                    "lock_play_file": True,
                    "events": False,
                    "local_ip": config.host,  # else 1.1.2 guesses a non-loopback address
                    "rtp_port_range": f"{config.rtp_port_min}-{config.rtp_port_max}",
                },
            ),
            "",
        ]
    )
    http = "\n".join(
        [
            "# Generated by spaces-bridge (docs/mixer.md): both APIs on one address, plain HTTP.",
            _section(
                "general",
                {
                    "json": "compact",
                    "base_path": "/janus",
                    "http": True,
                    "ip": config.host,
                    "port": http_port,
                    "https": False,
                },
            ),
            _section(
                "admin",
                {
                    "admin_base_path": "/admin",
                    "admin_http": True,
                    "admin_ip": config.host,
                    "admin_port": admin_port,
                    "admin_https": False,
                },
            ),
            _section("cors", {}),
            _section("certificates", {}),
            "",
        ]
    )
    return {
        "janus.jcfg": core,
        "janus.plugin.audiobridge.jcfg": audiobridge,
        "janus.transport.http.jcfg": http,
    }


def library_dirs(config: JanusConfig) -> list[pathlib.Path]:
    """Where Janus's plugin and transport folders may be, most likely first."""
    if config.library_dir is not None:
        return [pathlib.Path(config.library_dir)]
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    return [
        pathlib.Path(f"/usr/lib/{multiarch}/janus"),  # Debian and Ubuntu
        pathlib.Path("/usr/lib/janus"),
        pathlib.Path("/usr/local/lib/janus"),
        pathlib.Path("/opt/janus/lib/janus"),  # upstream's default --prefix
    ]


def find_libraries(config: JanusConfig) -> dict[str, pathlib.Path] | None:
    """The two libraries Janus is to load, by the runtime folder they are linked into, or None
    when a library directory holding both does not exist."""
    for base in library_dirs(config):
        found = {
            "plugins": base / "plugins" / AUDIOBRIDGE_LIBRARY,
            "transports": base / "transports" / HTTP_LIBRARY,
        }
        if all(path.is_file() for path in found.values()):
            return found
    return None


def write_runtime(
    folder: pathlib.Path, configs: dict[str, str], libraries: dict[str, pathlib.Path]
) -> None:
    """Write the configuration files (0600) and the library links into ``folder`` (made 0700 by
    its creator), replacing those of a previous start."""
    for name in ("plugins", "transports", "events", "loggers"):
        (folder / name).mkdir(mode=0o700, exist_ok=True)
    for name, library in libraries.items():
        link = folder / name / library.name
        link.unlink(missing_ok=True)
        link.symlink_to(library)
    for name, text in configs.items():
        path = folder / name
        # Created 0600 before the secrets go in, not chmod-ed afterwards.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
