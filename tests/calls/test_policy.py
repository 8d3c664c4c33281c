"""The per-call rules of docs/behaviour.md (Legacy and modern endpoints, Phone to server, Server to
phone), as tables: state before, event, commands, state after."""

from __future__ import annotations

import pytest

from bridge.calls import policy
from bridge.calls.policy import (
    CallState,
    Hand,
    KeyBuffer,
    KeyMap,
    LowerHand,
    MuteAll,
    Notify,
    RaiseHand,
    SetMedia,
)
from bridge.calls.version import Generation
from bridge.sip.sdp import Direction

LEGACY, MODERN = Generation.LEGACY, Generation.MODERN


def state(generation: Generation = LEGACY, /, **fields: object) -> CallState:
    # The tables hold the fields as dict[str, object], which mypy cannot match to CallState's.
    return CallState(generation, **fields)  # type: ignore[arg-type]


def audio(s: CallState) -> bool:
    """The audio state, read through a call so that mypy does not narrow it across policy calls."""
    return s.audio


@pytest.mark.parametrize(
    ("before", "direction", "held", "commands", "after"),
    [
        # recvonly: the phone stops sending = a mute request
        ({"audio": True}, Direction.RECVONLY, False, [SetMedia(audio=False)], {"audio": True}),
        # sendrecv while muted: an unmute request, which the server decides
        ({"audio": False}, Direction.SENDRECV, False, [SetMedia(audio=True)], {"audio": False}),
        # nothing changes: no command
        ({"audio": True}, Direction.SENDRECV, False, [], {}),
        # hold while unmuted: muted while held, remembered
        (
            {"audio": True},
            Direction.SENDONLY,
            True,
            [SetMedia(audio=False, held=True)],
            {"held": True, "audio_before_hold": True},
        ),
        # hold while muted: only recorded
        ({"audio": False}, Direction.INACTIVE, True, [SetMedia(held=True)], {"held": True}),
        # a repeated hold offer: nothing more
        ({"held": True}, Direction.SENDONLY, True, [], {"held": True}),
        # resume restores the pre-hold state
        (
            {"held": True, "audio_before_hold": True},
            Direction.SENDRECV,
            False,
            [SetMedia(audio=True, held=False)],
            {"held": False, "audio_before_hold": False},
        ),
        # resume from a mute stays muted
        ({"held": True}, Direction.SENDRECV, False, [SetMedia(held=False)], {"held": False}),
        # resume listening only: stays muted even if it was unmuted before hold
        (
            {"held": True, "audio_before_hold": True},
            Direction.RECVONLY,
            False,
            [SetMedia(held=False)],
            {"held": False},
        ),
    ],
)
def test_offers(
    before: dict[str, object],
    direction: Direction,
    held: bool,
    commands: list[policy.Command],
    after: dict[str, object],
) -> None:
    s = state(**before)
    assert policy.on_offer(s, direction, held=held) == commands
    for key, value in after.items():
        assert getattr(s, key) == value


@pytest.mark.parametrize(
    ("generation", "hand", "by_key", "commands"),
    [
        (LEGACY, Hand.LOWERED, False, [RaiseHand()]),  # the bridge raises it on its behalf
        (LEGACY, Hand.RAISED, False, []),  # already raised
        (MODERN, Hand.LOWERED, False, []),  # a modern endpoint raises its hand itself
        (MODERN, Hand.LOWERED, True, [RaiseHand()]),  # *6: the one-key flow for everyone
    ],
)
def test_refused_unmute(
    generation: Generation, hand: Hand, by_key: bool, commands: list[policy.Command]
) -> None:
    s = state(generation, hand=hand)
    assert policy.unmute_refused(s, by_key=by_key) == commands
    assert s.prevent_unmuting


@pytest.mark.parametrize(
    ("generation", "before", "hand", "commands"),
    [
        # legacy: accepted → the bridge unmutes on the server first
        (
            LEGACY,
            {"audio": False},
            Hand.ACCEPTED,
            [Notify("hand", "accepted"), SetMedia(audio=True)],
        ),
        # not while on hold
        (LEGACY, {"audio": False, "held": True}, Hand.ACCEPTED, [Notify("hand", "accepted")]),
        (LEGACY, {"audio": True}, Hand.ACCEPTED, [Notify("hand", "accepted")]),
        (LEGACY, {}, Hand.RAISED, [Notify("hand", "raised")]),
        # modern: told, unmutes itself
        (MODERN, {}, Hand.ACCEPTED, [Notify("hand", "accepted")]),
        (MODERN, {}, Hand.RAISED, [Notify("hand", "raised")]),
        (MODERN, {"hand": Hand.RAISED}, Hand.RAISED, []),
    ],
)
def test_hand(
    generation: Generation, before: dict[str, object], hand: Hand, commands: list[policy.Command]
) -> None:
    s = state(generation, **before)
    assert policy.on_hand(s, hand) == commands
    assert s.hand is hand


def test_server_media_orders_and_reports() -> None:
    legacy, modern = state(audio=True), state(MODERN, audio=True)
    assert policy.on_server_media(legacy, False, False, ordered=True) == [
        Notify("tracksstatus.change", False, video=False)
    ]
    assert not legacy.audio
    assert policy.on_server_media(modern, False, True, ordered=True) == [
        Notify("tracksstatus.change", False, video=True)
    ]
    assert policy.on_server_media(modern, True, False, ordered=False) == []  # a report
    held = state(held=True)
    # unmuted while held: muted again, the unmute kept for the resume
    assert policy.on_server_media(held, True, False, ordered=False) == [SetMedia(audio=False)]
    assert held.audio_before_hold and not held.audio


def test_mute_all() -> None:
    legacy, spared, modern = state(audio=True), state(audio=True), state(MODERN, audio=True)
    assert policy.on_mute_all(legacy, excluded=False, done=False) == [Notify("muteall", "muting")]
    assert audio(legacy)  # muting: nothing yet
    assert policy.on_mute_all(legacy, excluded=False, done=True) == [Notify("muteall", "muted")]
    assert not legacy.audio
    assert policy.on_mute_all(spared, excluded=True, done=True) == [Notify("muteall", "muted")]
    assert spared.audio
    assert policy.on_mute_all(modern, excluded=False, done=True) == [Notify("muteall", "muted")]


def test_signalling_follows_the_server() -> None:
    s = state(audio=False, signalled_audio=True)
    assert policy.wanted_direction(s) is Direction.SENDONLY
    assert policy.needs_offer(s)
    s.held = True
    assert not policy.needs_offer(s)  # on hold the phone's offer decides
    s.held, s.signalled_audio = False, None
    assert not policy.needs_offer(s)  # not answered yet
    s.audio, s.signalled_audio = True, True
    assert policy.wanted_direction(s) is Direction.SENDRECV and not policy.needs_offer(s)


KEYS = KeyMap()


@pytest.mark.parametrize(
    ("presses", "sequences"),
    [
        ([("*", 0.0), ("6", 0.3)], ["*6"]),
        ([("*", 0.0), ("6", 0.8)], []),  # too slow: two sequences, neither complete
        ([("*", 0.0), ("*", 0.1), ("6", 0.3)], ["*6"]),  # a repeated key counts once
        ([("*", 0.0), ("*", 0.4), ("6", 0.6)], ["*6"]),  # "**6": start over from the second *
        ([("1", 0.0), ("*", 0.2), ("9", 0.4)], ["*9"]),  # a stray key first
        ([("*", 0.0), ("6", 0.1), ("*", 0.2), ("6", 0.3)], ["*6", "*6"]),
        ([("*", 0.0), ("7", 0.1)], ["*7"]),
        ([("#", 0.0), ("6", 0.1)], []),
    ],
)
def test_key_sequences(presses: list[tuple[str, float]], sequences: list[str]) -> None:
    buffer = KeyBuffer()
    done = [s for d, t in presses if (s := policy.on_digit(buffer, d, t, KEYS)) is not None]
    assert done == sequences


@pytest.mark.parametrize(
    ("before", "sequence", "commands"),
    [
        ({"audio": True}, "*6", [SetMedia(audio=False)]),
        ({"audio": False}, "*6", [SetMedia(audio=True)]),
        ({}, "*9", [RaiseHand()]),
        ({"hand": Hand.RAISED}, "*9", [LowerHand()]),
        ({"hand": Hand.ACCEPTED}, "*9", [LowerHand()]),
        ({}, "*7", []),  # members may not mute everyone
        ({"moderator": True}, "*7", [MuteAll()]),
    ],
)
def test_keys(before: dict[str, object], sequence: str, commands: list[policy.Command]) -> None:
    assert policy.on_keys(state(**before), sequence, KEYS) == commands


def test_prevent_unmuting_notice_on_change_only() -> None:
    phone = state(MODERN)
    assert policy.on_prevent_unmuting(phone, True) == [Notify("preventunmuting", True)]
    assert policy.on_prevent_unmuting(phone, True) == []
