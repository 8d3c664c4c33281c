"""``[calls]`` (per-call behaviour: docs/behaviour.md, Phone to server, Server to phone and Lobby;
the voice menu: docs/calls.md) and ``[dialplan]`` (aliases of spaces, and the menu's numbers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..calls.menu import MenuRules
from ..calls.settings import MENU, GuessBounds
from .values import ConfigError
from .values import get as _get
from .values import known as _known
from .values import seconds as _seconds


@dataclass(frozen=True, slots=True)
class CallsConfig:
    """Per-call behaviour (docs/behaviour.md, Phone to server, Server to phone and Lobby)."""

    lobby_timeout_seconds: float = 300.0
    """How long a guest may wait in the lobby before 480 Temporarily Unavailable."""
    ringing_interval_seconds: float = 60.0
    """180 Ringing is re-sent this often so that proxies do not give up on a waiting call."""
    lobby_mode: str = "ring"
    """``ring``: guests hear ringing until admitted; ``answer``: answered at once with inactive
    media, re-offered when admitted."""
    mute_key: str = "*6"
    hand_key: str = "*9"
    mute_all_key: str = "*7"
    legacy_signalling: tuple[str, ...] = ("sdp", "conference")
    """Mute signalling methods for legacy endpoints: ``sdp`` (re-INVITE), ``info`` (JSON events),
    ``conference`` (RFC 4575 NOTIFYs to endpoints that subscribe)."""
    modern_signalling: tuple[str, ...] = ("sdp", "info", "conference")
    user_agents: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``[[calls.user_agents]] match = "Yealink*"``, ``signalling = [...]``: per-phone-model methods,
    first match wins (case-insensitive glob on User-Agent)."""
    menu: MenuRules = field(default_factory=MenuRules)
    """``menu_digit_timeout_seconds``, ``menu_silence_seconds``, ``menu_tries``: the voice menu."""
    guesses: GuessBounds = field(default_factory=GuessBounds)
    """``menu_ids_per_source``, ``menu_pins_per_source``, ``menu_pins_per_space``: wrong menu
    entries allowed a minute across calls."""


_SIGNALLING = ("sdp", "info", "conference")
_DEFAULT = CallsConfig()
_GUESSES = {
    "menu_ids_per_source": "ids_per_source",
    "menu_pins_per_source": "pins_per_source",
    "menu_pins_per_space": "pins_per_space",
}
_MENU_KEYS = ("menu_digit_timeout_seconds", "menu_silence_seconds", "menu_tries", *_GUESSES)


def read_calls(data: Mapping[str, Any], source: str) -> CallsConfig:
    keys = (
        "lobby_timeout_seconds",
        "ringing_interval_seconds",
        "lobby_mode",
        "mute_key",
        "hand_key",
        "mute_all_key",
        "legacy_signalling",
        "modern_signalling",
        "user_agents",
        *_MENU_KEYS,
    )
    _known(data, keys, source, "calls.")
    sequences: dict[str, str] = {}
    for name in ("mute_key", "hand_key", "mute_all_key"):
        value = _get(data, name, str, source, "calls.", getattr(_DEFAULT, name))
        if not value or any(c not in "0123456789*#ABCD" for c in value) or len(value) > 8:
            raise ConfigError(source, "calls." + name, "expected 1-8 DTMF keys (0-9 * # A-D)")
        sequences[name] = value
    values = list(sequences.values())
    for name, value in sequences.items():
        if (
            any(other != value and other.startswith(value) for other in values)
            or values.count(value) > 1
        ):
            raise ConfigError(
                source, "calls." + name, "must not equal or begin another key sequence"
            )
    signalling: dict[str, tuple[str, ...]] = {}
    for name in ("legacy_signalling", "modern_signalling"):
        methods = _get(data, name, list, source, "calls.", list(getattr(_DEFAULT, name)))
        if not all(item in _SIGNALLING for item in methods):
            raise ConfigError(
                source, "calls." + name, 'expected a list of "sdp", "info", "conference"'
            )
        signalling[name] = tuple(methods)
    agents: list[tuple[str, tuple[str, ...]]] = []
    for i, item in enumerate(_get(data, "user_agents", list, source, "calls.", [])):
        key = f"calls.user_agents[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(source, key, "expected a table with match and signalling")
        _known(item, ("match", "signalling"), source, key + ".")
        match = _get(item, "match", str, source, key + ".", None)
        methods = _get(item, "signalling", list, source, key + ".", None)
        if not match:
            raise ConfigError(source, key + ".match", "expected a User-Agent pattern")
        if methods is None or not all(m in _SIGNALLING for m in methods):
            raise ConfigError(
                source, key + ".signalling", 'expected a list of "sdp", "info", "conference"'
            )
        agents.append((match, tuple(methods)))
    lobby_mode = _get(data, "lobby_mode", str, source, "calls.", _DEFAULT.lobby_mode)
    if lobby_mode not in ("ring", "answer"):
        raise ConfigError(source, "calls.lobby_mode", 'expected "ring" or "answer"')
    return CallsConfig(
        lobby_mode=lobby_mode,
        lobby_timeout_seconds=_seconds(
            data, "lobby_timeout_seconds", source, _DEFAULT.lobby_timeout_seconds, "calls."
        ),
        ringing_interval_seconds=max(
            1.0,
            _seconds(
                data,
                "ringing_interval_seconds",
                source,
                _DEFAULT.ringing_interval_seconds,
                "calls.",
            ),
        ),
        mute_key=sequences["mute_key"],
        hand_key=sequences["hand_key"],
        mute_all_key=sequences["mute_all_key"],
        legacy_signalling=signalling["legacy_signalling"],
        modern_signalling=signalling["modern_signalling"],
        user_agents=tuple(agents),
        menu=_menu(data, source),
        guesses=_guesses(data, source),
    )


def _menu(data: Mapping[str, Any], source: str) -> MenuRules:
    rules = _DEFAULT.menu
    tries = _get(data, "menu_tries", int, source, "calls.", rules.tries)
    if not 1 <= tries <= 10:
        raise ConfigError(source, "calls.menu_tries", "expected 1-10 tries")
    timings = {}
    for key, name in (
        ("menu_digit_timeout_seconds", "digit_timeout"),
        ("menu_silence_seconds", "silence"),
    ):
        value = _seconds(data, key, source, getattr(rules, name), "calls.")
        if value < 1:
            raise ConfigError(source, "calls." + key, "expected at least 1 second")
        timings[name] = value
    return MenuRules(tries=tries, **timings)


def _guesses(data: Mapping[str, Any], source: str) -> GuessBounds:
    counts = {}
    for key, name in _GUESSES.items():
        value = _get(data, key, int, source, "calls.", getattr(_DEFAULT.guesses, name))
        if value < 1:
            # Zero would shut the menu: an operator who wants no menu leaves it out of [dialplan].
            raise ConfigError(source, "calls." + key, "expected at least 1 a minute")
        counts[name] = value
    return GuessBounds(**counts)


def read_dialplan(data: Mapping[str, Any], source: str) -> dict[str, str]:
    for alias, space in data.items():
        if not isinstance(space, str) or not space:
            raise ConfigError(
                source, f"dialplan.{alias}", f'expected a space id (a string) or "{MENU}"'
            )
    return dict(data)
