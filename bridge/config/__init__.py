"""The configuration file: one TOML document read once into frozen dataclasses (``document``), each
table read by its own module, every error naming the file, the key and what was expected.
"""

from .document import (
    DEFAULT_PORTS,
    MAX_WORKERS,
    AuthConfig,
    CallsConfig,
    ClientVerify,
    ConferenceConfig,
    Config,
    ConfigError,
    DrainConfig,
    LimitsConfig,
    Listen,
    MediaConfig,
    OpsConfig,
    SipConfig,
    from_mapping,
    load,
)

__all__ = [
    "DEFAULT_PORTS",
    "MAX_WORKERS",
    "AuthConfig",
    "CallsConfig",
    "ClientVerify",
    "ConferenceConfig",
    "Config",
    "ConfigError",
    "DrainConfig",
    "LimitsConfig",
    "Listen",
    "MediaConfig",
    "OpsConfig",
    "SipConfig",
    "from_mapping",
    "load",
]
