"""The configuration file: one TOML document read once into frozen dataclasses (``document``), each
table read by its own module, every error naming the file, the key and what was expected.
"""

from ..calls.access import AuthConfig
from .calls import CallsConfig
from .conference import ConferenceConfig
from .document import Config, from_mapping, load
from .drain import DrainConfig
from .limits import LimitsConfig
from .media import MediaConfig
from .ops import OpsConfig
from .sip import DEFAULT_PORTS, MAX_WORKERS, ClientVerify, Listen, SipConfig
from .values import ConfigError

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
