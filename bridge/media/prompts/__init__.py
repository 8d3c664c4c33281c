"""The spoken prompts the bridge plays to a phone (to the phone only, never into the meeting).

Each prompt is stored in this package as raw 8 kHz G.711, once per codec: ``<name>.pcmu`` (mu-law)
and ``<name>.pcma`` (A-law), a whole number of 20 ms frames of 160 bytes. They were recorded by
``scripts/make-prompts.sh`` (espeak-ng and sox, needed only to regenerate them); an operator may
put their own recordings in the same format, under the same names, in a folder of their own
(``[media] prompts_dir``), which then takes the place of these, file by file. :meth:`Prompts.load`
reads them all once and cuts them into frames, so the relay only picks up the next frame every
20 ms.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Literal, get_args

Codec = Literal["PCMU", "PCMA"]
"""The G.711 laws, named as in their RTP payload types (RFC 3551): 0 is PCMU, 8 is PCMA."""

CODECS: tuple[Codec, ...] = get_args(Codec)

FRAME_BYTES = 160
"""One RTP packet's worth: 20 ms of 8 kHz G.711, one byte per sample."""

SAMPLE_RATE = 8000

_SUFFIX: Mapping[Codec, str] = MappingProxyType({"PCMU": ".pcmu", "PCMA": ".pcma"})


class Prompt(enum.StrEnum):
    """A prompt; its value is the name of its files."""

    MUTED = "muted"
    UNMUTED = "unmuted"
    HAND_RAISED = "hand_raised"
    HAND_LOWERED = "hand_lowered"
    LOBBY_WAITING = "lobby_waiting"
    MEETING_ENDED = "meeting_ended"
    # The voice menu of a dial-in number (docs/calls.md, "One number for every meeting").
    MENU_MEETING_ID = "menu_meeting_id"
    MENU_NOT_FOUND = "menu_not_found"
    MENU_HOST_PIN = "menu_host_pin"
    MENU_WRONG_PIN = "menu_wrong_pin"
    MENU_GOODBYE = "menu_goodbye"


class PromptError(Exception):
    """A prompt's file is missing or is not a whole number of 20 ms G.711 frames."""


class Prompts:
    """Every prompt in both codecs, held in memory as bytes and as 160-byte frames."""

    __slots__ = ("_audio", "_frames")

    def __init__(self, audio: Mapping[tuple[Prompt, Codec], bytes]) -> None:
        missing = [f"{p}{_SUFFIX[c]}" for p in Prompt for c in CODECS if (p, c) not in audio]
        if missing:
            raise PromptError(f"no audio for the prompt files {', '.join(missing)}")
        for (prompt, codec), data in audio.items():
            _check(f"{prompt}{_SUFFIX[codec]}", data)
        self._audio: Mapping[tuple[Prompt, Codec], bytes] = MappingProxyType(dict(audio))
        self._frames: Mapping[tuple[Prompt, Codec], tuple[bytes, ...]] = MappingProxyType(
            {
                key: tuple(data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES))
                for key, data in self._audio.items()
            }
        )

    @classmethod
    def load(
        cls, source: Traversable | None = None, *, overrides: Traversable | None = None
    ) -> Prompts:
        """Reads every prompt file from ``source`` (this package's own files when None), then
        whichever of them ``overrides`` (an operator's folder, ``[media] prompts_dir``) has.

        Raises :class:`PromptError` naming the file when one of ``source`` is missing, or when a
        file is empty or not a whole number of 160-byte frames, or when ``overrides`` holds a
        recording under a name that is no prompt's (a typo would otherwise go unheard).
        """
        folder = resources.files(__name__) if source is None else source
        audio: dict[tuple[Prompt, Codec], bytes] = {}
        for prompt in Prompt:
            for codec in CODECS:
                path = folder / f"{prompt}{_SUFFIX[codec]}"
                try:
                    audio[prompt, codec] = path.read_bytes()
                except FileNotFoundError:
                    raise PromptError(
                        f"prompt file {path} is missing; regenerate the prompts with"
                        " scripts/make-prompts.sh or supply a raw 8 kHz G.711 recording"
                    ) from None
                _check(str(path), audio[prompt, codec])
        if overrides is not None:
            audio.update(recordings(overrides))
        return cls(audio)

    def audio(self, prompt: Prompt, codec: Codec) -> bytes:
        """The whole prompt, as stored."""
        return self._audio[prompt, codec]

    def frames(self, prompt: Prompt, codec: Codec) -> tuple[bytes, ...]:
        """The prompt as 160-byte frames, one per 20 ms RTP packet."""
        return self._frames[prompt, codec]

    def duration(self, prompt: Prompt, codec: Codec) -> float:
        """Seconds the prompt lasts (an operator's recordings may differ between the codecs)."""
        return len(self._audio[prompt, codec]) / SAMPLE_RATE


_BY_NAME: Mapping[str, Prompt] = MappingProxyType({prompt.value: prompt for prompt in Prompt})
_BY_SUFFIX: Mapping[str, Codec] = MappingProxyType({v: k for k, v in _SUFFIX.items()})


def recordings(folder: Traversable) -> dict[tuple[Prompt, Codec], bytes]:
    """The prompt files in an operator's folder, checked (:class:`PromptError` names a bad one).
    Other files (a README) are left alone, but a ``.pcmu``/``.pcma`` file must be named for a
    prompt, and a prompt's name must end in one."""
    found: dict[tuple[Prompt, Codec], bytes] = {}
    for entry in folder.iterdir():
        stem, dot, suffix = entry.name.rpartition(".")
        if not dot or not entry.is_file():
            continue
        codec, prompt = _BY_SUFFIX.get("." + suffix), _BY_NAME.get(stem)
        if codec is None and prompt is None:
            continue
        if prompt is None:
            raise PromptError(
                f"prompt file {entry} is named for no prompt; expected one of "
                + ", ".join(_BY_NAME)
            )
        if codec is None:
            raise PromptError(
                f"prompt file {entry}: a prompt is raw 8 kHz G.711 without a header, named"
                f" {stem}.pcmu (mu-law) or {stem}.pcma (A-law)"
            )
        data = entry.read_bytes()
        _check(str(entry), data)
        found[prompt, codec] = data
    return found


def _check(name: str, data: bytes) -> None:
    if not data:
        raise PromptError(f"prompt file {name} is empty")
    if len(data) % FRAME_BYTES:
        raise PromptError(
            f"prompt file {name} is {len(data)} bytes, not a whole number of 20 ms frames"
            f" ({FRAME_BYTES} bytes of 8 kHz G.711 each); pad it with the codec's silence byte"
            " (0xFF for PCMU, 0xD5 for PCMA)"
        )
