"""What a phone's actions and the server's decisions mean for one call. Pure. The rules are in
docs/behaviour.md, Legacy and modern endpoints, Phone to server and Server to phone.

A :class:`CallState` is plain data: the server's view of the attendee (authoritative), what the phone
was last told, hold and the hand. Each ``on_*`` function updates it and returns the conference
commands to perform; the orchestrator performs them and feeds their outcome back (for example
:func:`unmute_refused` when the server answers ``prevent_unmuting``). What the phone must be told
follows from the state alone (:func:`wanted_direction`, :func:`needs_offer`), which is why the phone
converges to the server after any interleaving of events: the orchestrator compares and re-offers
until they agree.

The bridge joins as a modern (1.1) client for every phone and plays the legacy rules itself, so that
legacy phones get the behaviour of docs/behaviour.md, Legacy and modern endpoints, whatever the
server does for legacy clients. :class:`Notify` commands are notices for every phone; whether one is
sent (INFO) depends on the phone's signalling methods, not on its generation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..sip import Direction
from .version import Generation


class Hand(enum.StrEnum):
    LOWERED = "lowered"
    RAISED = "raised"
    ACCEPTED = "accepted"


@dataclass(slots=True)
class CallState:
    """One phone in a meeting, as the bridge knows it. Plain data: it could live in a shared store."""

    generation: Generation
    moderator: bool = False
    audio: bool = False
    """The server's audio state: ``True`` = sending (unmuted). Authoritative."""
    video: bool = False
    held: bool = False
    audio_before_hold: bool = False
    """The audio state to restore when the phone resumes (docs/behaviour.md, Legacy and modern
    endpoints: hold)."""
    hand: Hand = Hand.LOWERED
    prevent_unmuting: bool = False
    signalled_audio: bool | None = None
    """What our last SDP told the phone (``sendrecv`` = may send); ``None`` before the answer."""

    @property
    def modern(self) -> bool:
        return self.generation is Generation.MODERN


# -- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetMedia:
    """POST mediastate for the phone's attendee (only the fields that are not ``None``)."""

    audio: bool | None = None
    video: bool | None = None
    held: bool | None = None


@dataclass(frozen=True, slots=True)
class RaiseHand:
    pass


@dataclass(frozen=True, slots=True)
class LowerHand:
    pass


@dataclass(frozen=True, slots=True)
class MuteAll:
    """A moderator phone's ``*7``: mute everyone but itself."""


@dataclass(frozen=True, slots=True)
class Notify:
    """An INFO JSON event for a modern phone (``bridge.sip.bodies`` builds the body)."""

    kind: str
    value: str | bool
    video: bool = False


Command = SetMedia | RaiseHand | LowerHand | MuteAll | Notify


# -- the phone -------------------------------------------------------------------------------------


def on_offer(
    state: CallState, audio: Direction, *, held: bool, video: Direction | None = None
) -> list[Command]:
    """The phone's (re-)offer: hold, resume, or a mute/unmute by direction (docs/behaviour.md,
    Phone to server)."""
    if held and not state.held:
        state.held = True
        state.audio_before_hold = state.audio
        # Muted on the server while held, so that hold music never reaches the meeting.
        return [SetMedia(audio=False, held=True) if state.audio else SetMedia(held=True)]
    if held:
        return []
    commands: list[Command] = []
    if state.held:
        state.held = False
        restore = state.audio_before_hold and audio.sends
        state.audio_before_hold = False
        commands.append(SetMedia(audio=True, held=False) if restore else SetMedia(held=False))
    elif audio.sends != state.audio:
        commands.append(SetMedia(audio=audio.sends))
    if video is not None and video.sends != state.video:
        commands.append(SetMedia(video=video.sends))
    return commands


def on_unmute_request(state: CallState, audio: bool) -> list[Command]:
    """A modern phone's JSON ``mediastate`` (or a key): asks the server; it decides."""
    return [] if audio == state.audio else [SetMedia(audio=audio)]


def unmute_refused(state: CallState, *, by_key: bool = False) -> list[Command]:
    """The server refused an unmute (``prevent_unmuting``; docs/behaviour.md, Legacy and modern
    endpoints).

    A legacy phone cannot raise its hand, so the bridge does it on its behalf; a key press (``*6``,
    the one-key flow) means the same for every phone. A modern endpoint is told (the INFO reply says
    "denied") and raises its hand itself."""
    state.prevent_unmuting = True
    if (by_key or not state.modern) and state.hand is Hand.LOWERED:
        return [RaiseHand()]
    return []


def on_keys(state: CallState, sequence: str, keys: KeyMap) -> list[Command]:
    """A completed DTMF sequence (docs/behaviour.md, Phone to server): toggle mute, toggle hand,
    mute all (moderators)."""
    if sequence == keys.mute:
        return [SetMedia(audio=not state.audio)]
    if sequence == keys.hand:
        return [LowerHand()] if state.hand is not Hand.LOWERED else [RaiseHand()]
    if sequence == keys.mute_all and state.moderator:
        return [MuteAll()]
    return []


@dataclass(frozen=True, slots=True)
class KeyMap:
    """DTMF sequences (docs/behaviour.md, Phone to server); none may be a prefix of another, so a
    match fires at once."""

    mute: str = "*6"
    hand: str = "*9"
    mute_all: str = "*7"
    sequence_gap: float = 0.75
    """Digits closer than this (seconds) form one sequence."""
    repeat_gap: float = 0.25
    """The same digit again within this counts once (phones that send a key twice)."""

    @property
    def sequences(self) -> tuple[str, ...]:
        return (self.mute, self.hand, self.mute_all)


@dataclass(slots=True)
class KeyBuffer:
    """The digits of the sequence being typed, per call."""

    digits: str = ""
    last_digit: str = ""
    last_at: float = float("-inf")


def on_digit(buffer: KeyBuffer, digit: str, now: float, keys: KeyMap) -> str | None:
    """Add a key press; returns a completed sequence, if this digit completed one."""
    if digit == buffer.last_digit and now - buffer.last_at < keys.repeat_gap:
        return None
    if now - buffer.last_at >= keys.sequence_gap:
        buffer.digits = ""
    buffer.last_digit, buffer.last_at = digit, now
    buffer.digits += digit
    sequences = keys.sequences
    if buffer.digits in sequences:
        done, buffer.digits = buffer.digits, ""
        return done
    if not any(s.startswith(buffer.digits) for s in sequences):
        # A wrong key: start over, from this key if it can begin a sequence ("**6" is "*6").
        buffer.digits = digit if any(s.startswith(digit) for s in sequences) else ""
    return None


# -- the server ------------------------------------------------------------------------------------


def on_server_media(state: CallState, audio: bool, video: bool, *, ordered: bool) -> list[Command]:
    """``tracksstatus`` (a report) or ``request.tracksstatus.change`` (an order) for this phone."""
    state.audio, state.video = audio, video
    commands: list[Command] = []
    if state.held and audio:
        # Unmuted while on hold (an admin, a stale order): keep the meeting free of hold music and
        # give the unmute back on resume.
        state.audio = False
        state.audio_before_hold = True
        commands.append(SetMedia(audio=False))
    if ordered:
        commands.append(Notify("tracksstatus.change", audio, video=video))
    return commands


def on_hand(state: CallState, hand: Hand) -> list[Command]:
    """The phone's hand changed on the server (raised, accepted by a moderator, lowered)."""
    if hand is state.hand:
        return []
    state.hand = hand
    commands: list[Command] = [Notify("hand", hand.value)]
    if not state.modern and hand is Hand.ACCEPTED and not state.audio and not state.held:
        # The bridge unmutes on the server first; the phone is told once that succeeded
        # (docs/behaviour.md, Legacy and modern endpoints).
        commands.append(SetMedia(audio=True))
    return commands


def on_mute_all(state: CallState, *, excluded: bool, done: bool) -> list[Command]:
    """``app.event.all.parties.muting`` (``done`` false) and ``…muted`` with the exclusion list."""
    commands: list[Command] = []
    if done and not excluded and state.audio:
        state.audio = False  # the per-attendee tracksstatus says the same; do not wait for it
    commands.append(Notify("muteall", "muted" if done else "muting"))
    return commands


def on_prevent_unmuting(state: CallState, enabled: bool) -> list[Command]:
    if enabled == state.prevent_unmuting:
        return []
    state.prevent_unmuting = enabled
    return [Notify("preventunmuting", enabled)]


# -- what the phone must be told -----------------------------------------------------------------


def wanted_direction(state: CallState) -> Direction:
    """Our audio direction: ``sendonly`` asks the phone not to send (muted), ``sendrecv`` lets it."""
    return Direction.SENDRECV if state.audio else Direction.SENDONLY


def needs_offer(state: CallState) -> bool:
    """Whether the phone was told something else than the server's state (and is not on hold,
    where its own offer decides the directions until it resumes)."""
    return (
        not state.held
        and state.signalled_audio is not None
        and state.signalled_audio != state.audio
    )
